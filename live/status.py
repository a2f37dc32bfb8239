"""`aiotrade status`: what the runner is doing, read from its state database (safe while it runs).

SQLite in WAL mode lets this read-only view see the last committed state without blocking the
runner. Nothing here talks to the exchange: it shows what the runner knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.state import ACTIVE, StateStore


@dataclass
class PairStatus:
    pair: str
    regime: str | None
    predicted: str | None
    probability: float | None
    params: dict[str, Any]
    policy_version: str | None
    last_bar_ts: int | None
    open_orders: list[dict[str, Any]]
    inventory_base: float
    avg_entry: float | None
    cash_quote: float
    realized_pnl_quote: float
    fees_quote: float
    last_close: float | None
    equity_quote: float | None
    start_equity_quote: float | None
    n_fills: int
    paused: str | None = None

    @property
    def pnl_quote(self) -> float | None:
        if self.equity_quote is None or self.start_equity_quote is None:
            return None
        return self.equity_quote - self.start_equity_quote


@dataclass
class RunnerStatus:
    db_path: str
    runner: dict[str, str]
    pairs: list[PairStatus] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def read_status(db_path: str | Path, n_events: int = 10) -> RunnerStatus:
    store = StateStore(db_path, read_only=True)
    try:
        runner = {k: store.get_meta(k) or "" for k in ("policy_version", "policy_uri", "mode", "exchange",
                                                        "runner_state", "heartbeat_ms", "started_ms")}
        out = RunnerStatus(str(db_path), runner, events=store.events(n_events))
        for pair in store.pairs():
            out.pairs.append(_pair_status(store, pair))
        return out
    finally:
        store.close()


def _pair_status(store: StateStore, pair: str) -> PairStatus:
    pos = store.position(pair)
    assert pos is not None
    reg = store.last_regime(pair)
    curve = store.equity_curve(pair)
    last = store._db.execute(
        "SELECT close, equity_quote FROM equity WHERE pair = ? ORDER BY ts_ms DESC LIMIT 1", (pair,)
    ).fetchone()
    start = store.get_meta(f"start_equity:{pair}")
    engine = store.load_engine(pair)
    orders = [
        {"client_id": i.client_id, "side": i.side, "role": i.role, "price": i.price, "amount": i.amount,
         "filled": i.filled, "status": i.status}
        for i in store.intents(pair, ACTIVE)
    ]
    return PairStatus(
        pair=pair,
        regime=reg["active"] if reg else None,
        predicted=reg["predicted"] if reg else None,
        probability=reg["probability"] if reg else None,
        params=reg["params"] if reg else {},
        policy_version=reg["policy_version"] if reg else None,
        last_bar_ts=engine[0] if engine else None,
        open_orders=orders,
        inventory_base=pos.base,
        avg_entry=pos.avg_entry,
        cash_quote=pos.cash_quote,
        realized_pnl_quote=pos.realized_pnl_quote,
        fees_quote=pos.fees_quote,
        last_close=float(last[0]) if last else None,
        equity_quote=float(last[1]) if last else (curve[-1][1] if curve else None),
        start_equity_quote=float(start) if start else None,
        n_fills=pos.n_fills,
        paused=store.get_meta(f"paused:{pair}") or None,
    )
