"""What the state DB holds: the schema, the intent lifecycle, and the records the store hands out.

Intent lifecycle (`live.state` moves intents along it, `live.sync` settles it with the venue):

    intent -> sent -> open -> filled | cancelled | rejected          (expired: never reached the venue)
                        \\-> cancelling -> cancelled | filled
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

SCHEMA_VERSION = 1

# Intent statuses. ACTIVE ones may still rest on (or be on their way to) the venue.
INTENT, SENT, OPEN, CANCELLING = "intent", "sent", "open", "cancelling"
FILLED, CANCELLED, REJECTED, EXPIRED = "filled", "cancelled", "rejected", "expired"
ACTIVE = (INTENT, SENT, OPEN, CANCELLING)
UNRESOLVED = (INTENT, SENT)  # we do not know whether the venue has them: look up by client id
FINAL = (FILLED, CANCELLED, REJECTED, EXPIRED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents(
    client_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    pair TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    role TEXT NOT NULL CHECK (role IN ('entry', 'exit')),
    slot INTEGER NOT NULL,
    order_type TEXT NOT NULL CHECK (order_type IN ('limit', 'market')),
    kind INTEGER NOT NULL,
    ref INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    aux REAL NOT NULL,
    price REAL NOT NULL CHECK (price > 0),
    amount REAL NOT NULL CHECK (amount > 0),
    bar_ts INTEGER NOT NULL,
    status TEXT NOT NULL,
    venue_order_id TEXT,
    filled REAL NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS intents_by_status ON intents(pair, status);
CREATE INDEX IF NOT EXISTS intents_by_venue_id ON intents(pair, venue_order_id);
CREATE TABLE IF NOT EXISTS fills(
    fill_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES intents(client_id),
    pair TEXT NOT NULL,
    side TEXT NOT NULL,
    price REAL NOT NULL,
    amount REAL NOT NULL,
    fee REAL NOT NULL,
    fee_asset TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS fills_by_pair ON fills(pair, applied, ts_ms);
CREATE TABLE IF NOT EXISTS positions(
    pair TEXT PRIMARY KEY,
    cash_quote REAL NOT NULL,
    base REAL NOT NULL,
    cost_quote REAL NOT NULL,
    realized_pnl_quote REAL NOT NULL,
    fees_quote REAL NOT NULL,
    n_fills INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS equity(
    pair TEXT NOT NULL, ts_ms INTEGER NOT NULL, close REAL NOT NULL,
    cash_quote REAL NOT NULL, base REAL NOT NULL, equity_quote REAL NOT NULL,
    PRIMARY KEY (pair, ts_ms)
);
CREATE TABLE IF NOT EXISTS regimes(
    pair TEXT NOT NULL, bar_ts INTEGER NOT NULL, predicted TEXT NOT NULL, probability REAL NOT NULL,
    active TEXT NOT NULL, params_json TEXT NOT NULL, policy_version TEXT NOT NULL,
    PRIMARY KEY (pair, bar_ts)
);
CREATE TABLE IF NOT EXISTS engine(
    pair TEXT PRIMARY KEY, bar_ts INTEGER NOT NULL, state BLOB NOT NULL, extra_json TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, pair TEXT, level TEXT NOT NULL,
    kind TEXT NOT NULL, message TEXT NOT NULL
);
"""

# Rows rewritten every bar (meta, the engine state) are upserted: an update in place leaves the key's
# index alone, where INSERT OR REPLACE deletes and re-inserts both (one WAL page more per commit).
PUT_META = "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
PUT_ENGINE = (
    "INSERT INTO engine(pair, bar_ts, state, extra_json, updated_ms) VALUES (?,?,?,?,?) ON CONFLICT(pair) DO UPDATE"
    " SET bar_ts = excluded.bar_ts, state = excluded.state, extra_json = excluded.extra_json,"
    " updated_ms = excluded.updated_ms"
)


@dataclass(frozen=True)
class EngineRef:
    """Which engine order an intent carries out (`strategies.engine.EngineOrder` identity), so a fill
    can be booked into the engine even after a restart."""

    kind: int = 0
    ref: int = 0
    epoch: int = 0
    aux: float = 0.0
    market: bool = False


@dataclass(frozen=True)
class Intent:
    client_id: str
    pair: str
    side: str
    role: str
    slot: int
    engine: EngineRef
    price: float
    amount: float
    bar_ts: int
    status: str
    venue_order_id: str | None
    filled: float
    created_ms: int
    updated_ms: int
    reason: str | None

    @property
    def remaining(self) -> float:
        return max(0.0, self.amount - self.filled)

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"


# The venue's answer about one of our orders, to record: (client id, new status, venue order id).
Answer = tuple[str, str, str | None]


@dataclass(frozen=True)
class Fill:
    fill_id: str
    client_id: str
    pair: str
    side: str
    price: float
    amount: float
    fee: float
    fee_asset: str
    ts_ms: int


@dataclass(frozen=True)
class Position:
    pair: str
    cash_quote: float
    base: float
    cost_quote: float
    realized_pnl_quote: float
    fees_quote: float
    n_fills: int

    @property
    def avg_entry(self) -> float | None:
        return self.cost_quote / self.base if self.base > 0 else None

    def equity(self, close: float) -> float:
        return self.cash_quote + self.base * close


def intent_from_row(r: sqlite3.Row) -> Intent:
    eng = EngineRef(r["kind"], r["ref"], r["epoch"], r["aux"], r["order_type"] == "market")
    return Intent(r["client_id"], r["pair"], r["side"], r["role"], r["slot"], eng, r["price"], r["amount"],
                  r["bar_ts"], r["status"], r["venue_order_id"], r["filled"], r["created_ms"], r["updated_ms"],
                  r["reason"])


def fill_from_row(r: sqlite3.Row) -> Fill:
    return Fill(r["fill_id"], r["client_id"], r["pair"], r["side"], r["price"], r["amount"], r["fee"], r["fee_asset"],
                r["ts_ms"])


def position_from_row(r: sqlite3.Row) -> Position:
    return Position(r["pair"], r["cash_quote"], r["base"], r["cost_quote"], r["realized_pnl_quote"], r["fees_quote"],
                    r["n_fills"])


def book_fill(pos: Position, fill: Fill, quote_asset: str) -> Position:
    """The position after one fill, at average cost. Fees as the venue charged them: a fee in the base
    asset (buys) reduces what was received, in quote (sells) what was paid out."""
    fee_in_quote = fill.fee_asset == quote_asset
    fee_quote = fill.fee if fee_in_quote else fill.fee * fill.price
    notional = fill.price * fill.amount
    cash, base, cost, realized = pos.cash_quote, pos.base, pos.cost_quote, pos.realized_pnl_quote
    if fill.side == "buy":
        cash -= notional + (fill.fee if fee_in_quote else 0.0)
        base += fill.amount - (0.0 if fee_in_quote else fill.fee)
        cost += notional + (fill.fee if fee_in_quote else 0.0)
    else:
        sold = fill.amount + (0.0 if fee_in_quote else fill.fee)
        avg = cost / base if base > 0 else fill.price
        cash += notional - (fill.fee if fee_in_quote else 0.0)
        realized += notional - fee_quote - avg * sold
        cost -= avg * sold
        base -= sold
        if base <= 1e-12:  # sold out: drop float dust from the cost basis
            base, cost = max(base, 0.0), 0.0
    return replace(pos, cash_quote=cash, base=base, cost_quote=cost, realized_pnl_quote=realized,
                   fees_quote=pos.fees_quote + fee_quote, n_fills=pos.n_fills + 1)
