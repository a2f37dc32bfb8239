"""Request signatures as Binance and Bitget compute them, for the emulator to verify.

Binance: `signature = hex(HMAC_SHA256(secret, totalParams))`, where totalParams is the query string
followed by the form body, exactly as sent, without the trailing `&signature=...`.
Bitget: `ACCESS-SIGN = base64(HMAC_SHA256(secret, timestamp + METHOD + path + ["?" + query] + body))`,
the query being the raw (percent-decoded) `k=v&...` in the order sent.
Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import unquote_plus


def binance_signature(secret: str, payload: str) -> str:
    return hmac.digest(secret.encode(), payload.encode(), "sha256").hex()


def split_binance_signature(raw_query: str, body: str) -> tuple[str, str | None]:
    """(signed payload, signature or None) from the raw query and form body of a request."""
    total = raw_query + body  # Binance concatenates the two without a separator
    head, sep, tail = ("&" + total).rpartition("&signature=")
    if not sep:
        return total, None
    sig, _, rest = tail.partition("&")
    payload = (head + "&" + rest)[1:] if head and rest else (head[1:] if head else rest)
    return payload, sig or None


def binance_signature_ok(secret: str, payload: str, signature: str) -> bool:
    return hmac.compare_digest(binance_signature(secret, payload), signature.lower())


def bitget_prehash(timestamp: str, method: str, path: str, raw_query: str, body: str) -> str:
    query = unquote_plus(raw_query)
    return timestamp + method.upper() + path + ("?" + query if query else "") + body


def bitget_signature(secret: str, timestamp: str, method: str, path: str, raw_query: str, body: str) -> str:
    msg = bitget_prehash(timestamp, method, path, raw_query, body)
    return base64.b64encode(hmac.digest(secret.encode(), msg.encode(), "sha256")).decode()


def bitget_signature_ok(
    secret: str, signature: str, timestamp: str, method: str, path: str, raw_query: str, body: str
) -> bool:
    return hmac.compare_digest(bitget_signature(secret, timestamp, method, path, raw_query, body), signature)
