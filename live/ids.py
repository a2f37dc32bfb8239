"""Idempotent client order ids, derived from the order intent alone.

Binance accepts `newClientOrderId` matching `^[.A-Z:/a-z0-9_-]{1,36}$`; Bitget's `clientOid` takes up to
40 characters. We use lower-case letters and digits only, 24 characters: a short namespace (the bot's
name, so two bots on one account never collide), then a base-32 hash of the intent. The same intent
always gives the same id, so a retry or a re-decision after a crash can never create a second order:
the venue (and the adapter's lookup by client id) sees the same id again.
"""

from __future__ import annotations

import base64
import hashlib
import re

CLIENT_ID_LEN = 24
_NS_LEN = 4
_SAFE = re.compile(r"^[a-z0-9]+$")


def namespace_tag(name: str) -> str:
    """A 4-character tag for a bot name (any text): letters/digits only, stable across runs."""
    return _b32(hashlib.sha256(name.encode()).digest())[:_NS_LEN]


def client_order_id(namespace: str, pair: str, bar_ts: int, slot: int, side: str, price: float, amount: float) -> str:
    """Deterministic, venue-safe id for one order intent (`repr` of floats is exact and stable)."""
    tag = namespace_tag(namespace)
    key = f"{pair}|{bar_ts}|{slot}|{side}|{price!r}|{amount!r}"
    body = _b32(hashlib.sha256(f"{tag}|{key}".encode()).digest())
    cid = "a" + tag + body[: CLIENT_ID_LEN - 1 - _NS_LEN]
    assert _SAFE.match(cid) and len(cid) == CLIENT_ID_LEN
    return cid


def is_ours(client_id: str | None, namespace: str) -> bool:
    """True when an order on the venue was placed by this bot (other orders are left alone)."""
    return bool(client_id) and len(client_id or "") == CLIENT_ID_LEN and (client_id or "").startswith(
        "a" + namespace_tag(namespace)
    )


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()
