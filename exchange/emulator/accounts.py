"""Simulated spot accounts: keys, balances (free/locked), orders and fills.

Venue-neutral: the Binance and Bitget route modules format these, the matching engine changes them,
and the paper venue persists them. Accounts come from a small config (a dict or a TOML file):

    [accounts.alice]
    key = "alice-key"
    secret = "alice-secret"
    passphrase = "alice-pass"          # Bitget only
    balances = { USDT = 10000.0, BTC = 0.5 }
"""

from __future__ import annotations

import tomllib
from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# Balances are rounded to this many decimals after each change, so float dust never shows up as
# "0.000000000000001 BTC locked" once an order is done.
BALANCE_DECIMALS = 12

# Order statuses in Binance's words (Bitget's are mapped in its route module).
NEW, PARTIALLY_FILLED, FILLED, CANCELED = "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED"
OPEN_STATUSES = (NEW, PARTIALLY_FILLED)


@dataclass(frozen=True)
class AccountSpec:
    """One account as configured: who may sign for it and what it starts with."""

    name: str
    key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)
    balances: dict[str, float] = field(default_factory=dict)


@dataclass
class AssetBalance:
    free: float = 0.0
    locked: float = 0.0

    @property
    def total(self) -> float:
        return self.free + self.locked


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol_id: str
    side: str  # "buy" | "sell"
    type: str  # "limit" | "market"
    price: float  # limit price; for market orders the average fill price
    orig_qty: float
    created_ms: int
    # First bar open time the order may fill on (it never fills on the bar it was placed in).
    eligible_from_ms: int
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    fee_total: float = 0.0
    fee_asset: str = ""
    status: str = NEW
    updated_ms: int = 0
    # What this order still holds locked (quote for buys, base for sells); released on cancel.
    locked_left: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_qty(self) -> float:
        return round(self.orig_qty - self.executed_qty, BALANCE_DECIMALS)

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else 0.0


@dataclass
class SimTrade:
    trade_id: int
    order_id: int
    symbol_id: str
    side: str
    price: float
    qty: float
    quote_qty: float
    fee: float
    fee_asset: str
    ts_ms: int
    is_maker: bool


class Account:
    """Balances, orders and trades of one account. Not thread-safe: callers hold the state lock."""

    def __init__(self, spec: AccountSpec) -> None:
        self.spec = spec
        self.balances: dict[str, AssetBalance] = {
            asset.upper(): AssetBalance(free=float(v)) for asset, v in spec.balances.items()
        }
        self.orders: dict[int, SimOrder] = {}
        self.by_client_id: dict[str, int] = {}
        # The earliest `eligible_from_ms` of the orders added since the emulator's trading state last
        # matched (None: none added). Its `sync` skips matching at an unchanged clock unless an
        # added order may fill on a bar that has already closed (see `TradingState.sync`).
        self.added_eligible_ms: int | None = None
        self.trades: list[SimTrade] = []
        # Order ids changed since the last `drain_changes()` (the paper venue persists only those).
        self.changed_orders: set[int] = set()
        # Ids of the open orders, so matching and listings never scan the whole history.
        self._open: dict[int, None] = {}
        # `trades` per symbol (times, trades), indexed lazily up to `_indexed`: trade queries bisect
        # by time instead of scanning the whole history (a long replay makes tens of thousands).
        self._trade_index: dict[str, tuple[list[int], list[SimTrade]]] = {}
        self._unsorted_symbols: set[str] = set()
        self._indexed = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def balance(self, asset: str) -> AssetBalance:
        b = self.balances.get(asset)
        if b is None:  # (not setdefault: that builds a balance on every call, for nothing)
            b = self.balances[asset] = AssetBalance()
        return b

    def add(self, asset: str, free_delta: float = 0.0, locked_delta: float = 0.0) -> None:
        b = self.balance(asset)
        b.free = _clean(b.free + free_delta)
        b.locked = _clean(b.locked + locked_delta)

    def add_order(self, order: SimOrder) -> None:
        self.orders[order.order_id] = order
        self.by_client_id[order.client_order_id] = order.order_id
        if self.added_eligible_ms is None or order.eligible_from_ms < self.added_eligible_ms:
            self.added_eligible_ms = order.eligible_from_ms
        self.mark_changed(order)

    def mark_changed(self, order: SimOrder) -> None:
        """Record that `order` changed (status, fills): keeps the open index and the save list."""
        self.changed_orders.add(order.order_id)
        if order.is_open:
            self._open[order.order_id] = None
        else:
            self._open.pop(order.order_id, None)

    def order_by_client_id(self, client_order_id: str) -> SimOrder | None:
        oid = self.by_client_id.get(client_order_id)
        return self.orders.get(oid) if oid is not None else None

    def open_orders(self, symbol_id: str | None = None) -> list[SimOrder]:
        orders = (self.orders[i] for i in self._open)
        return [o for o in orders if symbol_id is None or o.symbol_id == symbol_id]

    def trades_from(self, symbol_id: str, start_ms: int) -> list[SimTrade]:
        """This symbol's trades with `ts_ms >= start_ms`, in the order they were made."""
        for t in self.trades[self._indexed :]:
            times, trades = self._trade_index.setdefault(t.symbol_id, ([], []))
            if times and t.ts_ms < times[-1]:  # never by the matching engine; then scan, still right
                self._unsorted_symbols.add(t.symbol_id)
            times.append(t.ts_ms)
            trades.append(t)
        self._indexed = len(self.trades)
        times, trades = self._trade_index.get(symbol_id, ([], []))
        if symbol_id in self._unsorted_symbols:
            return [t for t in trades if t.ts_ms >= start_ms]
        return trades[bisect_left(times, start_ms) :]

    def drain_changes(self) -> set[int]:
        changed, self.changed_orders = self.changed_orders, set()
        return changed

    def snapshot(self) -> dict[str, Any]:
        return {
            "balances": {
                a: {"free": b.free, "locked": b.locked} for a, b in sorted(self.balances.items()) if b.total
            },
            "open_orders": [asdict(o) for o in sorted(self.open_orders(), key=lambda o: o.order_id)],
            "orders": len(self.orders),
            "trades": len(self.trades),
        }


def _clean(x: float) -> float:
    x = round(x, BALANCE_DECIMALS)
    return 0.0 if x == 0 else x


DEFAULT_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(
        "default",
        key="emulator-key",
        secret="emulator-secret",
        passphrase="emulator-pass",
        balances={"USDT": 10_000.0, "BTC": 1.0, "ETH": 10.0},
    ),
)


def accounts_from_dict(raw: dict[str, Any], source: str = "<accounts>") -> list[AccountSpec]:
    """`{"accounts": {name: {key, secret, passphrase?, balances}}}` -> specs, with clear errors."""
    table = raw.get("accounts")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{source}: no [accounts.<name>] tables", "see exchange/emulator/accounts.py")
    specs, keys = [], set()
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{source}: accounts.{name} must be a table", 'write [accounts.NAME] key = "..."'
            )
        unknown = set(entry) - {"key", "secret", "passphrase", "balances"}
        if unknown:
            raise ConfigError(
                f"{source}: accounts.{name}: unknown keys {sorted(unknown)}",
                "allowed: key, secret, passphrase, balances",
            )
        if not entry.get("key") or not entry.get("secret"):
            raise ConfigError(f"{source}: accounts.{name}: key and secret are required", "add both")
        if entry["key"] in keys:
            raise ConfigError(
                f"{source}: accounts.{name}: key used by another account", "give each account its own key"
            )
        keys.add(entry["key"])
        balances = entry.get("balances", {})
        bad = {a: v for a, v in balances.items() if not isinstance(v, int | float) or v < 0}
        if bad:
            raise ConfigError(
                f"{source}: accounts.{name}.balances: {bad} must be numbers >= 0", "fix the amounts"
            )
        specs.append(
            AccountSpec(
                name, str(entry["key"]), str(entry["secret"]), entry.get("passphrase"), dict(balances)
            )
        )
    return specs


def load_accounts(path: str | Path) -> list[AccountSpec]:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: emulator accounts file not found", "pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{p}: not valid TOML: {e}", "fix the syntax at the line and column given"
        ) from None
    return accounts_from_dict(raw, str(p))
