"""Client order ids of this bot's intents: `exchange.port.client_order_id` over the intent's fields.

The port makes the id (venue-safe charset and length, deterministic hash); this module decides what
the intent key is and which prefix marks the bot. The prefix is a 4-character tag of `live.bot_name`,
so two bots on one account never collide and the runner never touches an order it did not place.
The same intent always gives the same id, so a retry or a re-decision after a crash can never create
a second order: the venue (and the adapter's lookup by client id) sees the same id again.
"""

from __future__ import annotations

import base64
import hashlib

from exchange.port import client_order_id

_TAG_LEN = 4
CLIENT_ID_LEN = _TAG_LEN + 28


def namespace_tag(bot_name: str) -> str:
    """4 lower-case letters/digits for a bot name, stable across runs."""
    return base64.b32encode(hashlib.sha256(bot_name.encode()).digest()).decode().lower()[:_TAG_LEN]


def intent_client_id(bot_name: str, pair: str, bar_ts: int, slot: int, side: str, price: float, amount: float) -> str:
    """Deterministic id of one order intent (`repr` of a float is exact and stable)."""
    key = f"{bot_name}|{pair}|{bar_ts}|{slot}|{side}|{price!r}|{amount!r}"
    return client_order_id(key, prefix=namespace_tag(bot_name))


def is_ours(client_id: str | None, bot_name: str) -> bool:
    """True when an order on the venue was placed by this bot (other orders are left alone)."""
    return bool(client_id) and len(client_id or "") == CLIENT_ID_LEN and (client_id or "").startswith(
        namespace_tag(bot_name)
    )
