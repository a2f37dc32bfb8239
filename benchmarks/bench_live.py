"""The live runner through its whole stack: decision latency, replay throughput, memory over a long soak.

    .venv/bin/python -m benchmarks live
    AIOTRADE_BENCH_SOAK_BARS=20000 .venv/bin/python -m benchmarks live     # a shorter soak

Everything runs as `aiotrade live --replay` does: the runner, the state DB (SQLite WAL), real ccxt
clients signing requests over loopback HTTP, the in-process emulator matching on the shared fill model.
The policy is a real bundle (LightGBM regime model + per-regime grid/DCA/pause table) registered in a
throw-away MLflow store, trained on the bundled candles.

1. Decision latency per pair: from the moment a pair's cycle starts at the candle close to its orders
   submitted, minus the time spent inside venue calls (the exchange's own time, HTTP included).
   Also shown: the pure decision (candle in hand -> plan ready: fills booked, features, model, engine,
   guards, diff). Goal: <= 50 ms p99.
2. Replay throughput, bars/s through the whole stack (warm: the first bar's start-up excluded).
   Goal: >= 200 bars/s.
3. Memory over a soak of AIOTRADE_BENCH_SOAK_BARS bars (default 100,000; real BTC/USDT 5m of 2023 from
   ../shared, the bundled sample tiled in time when absent): RSS every 10% of the run. Goal: flat
   within 10% after warm-up.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import Config, config_from_dict
from core.store import CandleStore
from live.logs import setup_logging
from live.policy_source import StaticPolicy
from live.replay import load_replay_state, run_replay, start_emulator
from live.state import StateStore

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "pipeline" / "sample_data"
SHARED_5M = REPO.parent / "shared" / "data" / "ohlcv" / "binance" / "2023_1h_5m" / "BTC_USDT-5m.feather"
BAR_MS = 300_000
DAY_MS = 86_400_000
START = 1672531200000 + 6 * DAY_MS  # past the 1h features' warm-up in the sample


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cfg(pairs: list[str], uri: str | None = None) -> Config:
    raw: dict[str, Any] = {
        "market": {"pairs": pairs, "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "grid", "grid": {"grid_step_pct": 0.15, "levels": 8, "order_size_quote": 60.0}},
        "risk": {"capital_quote": 1000.0 * len(pairs), "max_allocation_per_pair_pct": 100.0},
    }
    if uri:
        raw["mlflow"] = {"tracking_uri": uri, "model_name": "bench-policy"}
    return config_from_dict(raw)


def _bundle(tmp: Path, pairs: list[str]) -> Any:
    """A bundle registered as champion in a fresh MLflow store, loaded back the way the runner loads it."""
    import mlflow

    from core.config import DcaConfig, GridConfig
    from features import build_features, make_spec
    from live.watcher import ChampionWatcher
    from models.classifier import RegimeClassifier
    from models.labels import LabelRule, label_regimes
    from models.policy_bundle import PolicyBundle, log_policy_bundle, set_alias
    from models.registry import use_store
    from strategies.policy import Policy, RegimeParams

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    use_store(uri, "bench-live")
    candles = CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m").iloc[:6000].reset_index(drop=True)
    spec = make_spec("5m", ["1h"])
    X = build_features(candles, spec)
    y = label_regimes(candles, LabelRule(24), "5m").dropna()
    rows = X.index.intersection(y.index)
    clf = RegimeClassifier(n_estimators=40, early_stopping_rounds=None, n_jobs=1, min_child_samples=20)
    clf.fit(X.loc[rows], y.loc[rows].to_numpy())
    g = GridConfig(grid_step_pct=0.12, levels=8, order_size_quote=60.0)
    d = DcaConfig(base_order_quote=50.0, safety_order_quote=50.0, max_safety_orders=3, price_deviation_pct=0.25,
                  step_scale=1.0, volume_scale=1.0, take_profit_pct=0.25)
    policy = Policy(regimes={0: RegimeParams(engine="grid", grid=g), 1: RegimeParams(engine="dca", dca=d),
                             2: RegimeParams(engine="grid", grid=g), 3: RegimeParams(engine="none")},
                    min_dwell_bars=2, min_regime_probability=0.4)
    with mlflow.start_run():
        version = log_policy_bundle(PolicyBundle(clf, policy, spec, tuple(pairs), "binance", ("1h",)), "bench-policy")
    assert version is not None
    set_alias("bench-policy", "champion", version)
    return ChampionWatcher(_cfg(pairs, uri)).load_current(), uri


class _Timed:
    """The venue with the time spent inside it counted (the exchange's own time, HTTP included)."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self.spent_s = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._venue, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*a, **k)
            finally:
                self.spent_s += time.perf_counter() - t0

        return call


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def latency(tmp: Path) -> None:
    pairs = ["BTC/USDT", "ETH/USDT"]
    bundle, uri = _bundle(tmp, pairs)
    cfg = _cfg(pairs, uri)
    env = start_emulator(load_replay_state(SAMPLE, cfg, START), cfg)
    timed = _Timed(env.venue)
    env.venue = timed  # type: ignore[assignment]
    store = StateStore(tmp / "lat.db", namespace=cfg.live.bot_name)  # fsync per intent, as live trading does
    per_pair: dict[str, list[float]] = defaultdict(list)
    decide: dict[str, list[float]] = defaultdict(list)
    import live.trader as trader_mod

    original = trader_mod.PairTrader.run_bar

    def run_bar(self: Any, now_ms: int) -> Any:
        t0, venue0 = time.perf_counter(), timed.spent_s
        rep = original(self, now_ms)
        if rep is not None:
            per_pair[self.pair].append((time.perf_counter() - t0 - (timed.spent_s - venue0)) * 1000.0)
            decide[self.pair].append(rep.decision_ms)
        return rep

    trader_mod.PairTrader.run_bar = run_bar  # type: ignore[method-assign]
    n = 600
    try:
        run_replay(cfg, env, store, bundle, START, START + n * BAR_MS)
    finally:
        trader_mod.PairTrader.run_bar = original  # type: ignore[method-assign]
        env.server.stop()
        timed._venue.close()
    print(f"1. decision latency, {n} bars x {len(pairs)} pairs, policy {bundle.version} "
          f"({len(bundle.spec.names)} features, warm-up {bundle.warmup_bars} bars), first bar excluded:")
    for pair in pairs:
        lat, dec = per_pair[pair][1:], decide[pair][1:]
        print(f"   {pair}: close -> orders submitted, excluding exchange time: p50 {_pct(lat, 50):.1f} ms, "
              f"p99 {_pct(lat, 99):.1f} ms, max {max(lat):.1f} ms (goal p99 <= 50 ms: "
              f"{'met' if _pct(lat, 99) <= 50 else 'NOT met'}); pure decision p50 {_pct(dec, 50):.1f} ms, "
              f"p99 {_pct(dec, 99):.1f} ms")
    store.close()


def _throughput(label: str, cfg: Config, policy: Any, n: int, tmp: Path, name: str) -> float:
    env = start_emulator(load_replay_state(SAMPLE, cfg, START), cfg)
    requests = [0]

    def count(req: Any, call_next: Any) -> Any:
        requests[0] += 1
        return call_next(req)

    env.server.router.use(count)
    store = StateStore(tmp / f"{name}.db", namespace=cfg.live.bot_name, durable_intents=False)
    stamps: list[tuple[float, float]] = []  # (wall, CPU of this process: runner + emulator threads)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        runner = run_replay(cfg, env, store, policy, START, START + n * BAR_MS,
                            on_bar=lambda close, reps: stamps.append((time.perf_counter(), time.process_time())))
    finally:
        env.close()
    total = time.perf_counter() - t0
    warm = (len(stamps) - 1) / (stamps[-1][0] - stamps[0][0])
    cpu_ms = (stamps[-1][1] - stamps[0][1]) / (len(stamps) - 1) * 1000.0
    fills = sum(store.position(p).n_fills for p in cfg.market.pairs)
    print(f"   {label}: {runner.stats.bars} bars in {total:.1f} s incl. start-up; warm {warm:.0f} bars/s "
          f"({warm * len(cfg.market.pairs):.0f} pair-bars/s), CPU {cpu_ms:.2f} ms/bar (runner + emulator "
          f"threads, one process; ~{1000.0 / cpu_ms:.0f} bars/s with a core to itself), {requests[0] / runner.stats.bars:.2f} requests/bar, "
          f"{fills} fills, load {load0:.2f} -> {os.getloadavg()[0]:.2f} (goal >= 200 bars/s: "
          f"{'met' if warm >= 200 else 'NOT met'})")
    store.close()
    return warm


def throughput(tmp: Path) -> None:
    print("2. replay throughput through the whole stack (runner + state DB + ccxt over HTTP + emulator):")
    one = _cfg(["BTC/USDT"])
    _throughput("static grid, 1 pair ", one, StaticPolicy.from_config(one), 3000, tmp, "t1")
    (tmp / "b").mkdir()
    bundle, uri = _bundle(tmp / "b", ["BTC/USDT", "ETH/USDT"])
    _throughput("model policy, 1 pair", _cfg(["BTC/USDT"], uri), bundle, 2000, tmp, "t2")
    _throughput("model policy, 2 pairs", _cfg(["BTC/USDT", "ETH/USDT"], uri), bundle, 1000, tmp, "t3")


def _soak_store(tmp: Path, bars: int) -> tuple[Path, str]:
    if SHARED_5M.is_file():
        raw = pd.read_feather(SHARED_5M)
        df = pd.DataFrame({"ts": raw["date"].astype("int64") // 1_000_000,
                           **{c: raw[c] for c in ("open", "high", "low", "close", "volume")}})
        source = "real BTC/USDT 5m 2023 (../shared)"
        if len(df) < bars + 300:
            df = _tile(df, bars + 300)
            source += ", tiled"
    else:
        df = _tile(CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m"), bars + 300)
        source = "bundled BTC/USDT 5m sample, tiled in time"
    root = tmp / "soak-store"
    CandleStore(root).write("binance", "BTC/USDT", "5m", df)
    return root, source


def _tile(df: pd.DataFrame, rows: int) -> pd.DataFrame:
    """Repeat the candles back to back (each copy shifted in time and scaled to join the last close)."""
    parts, ts0, scale = [], int(df.ts.iloc[0]), 1.0
    while sum(len(p) for p in parts) < rows:
        shift = (len(parts) and int(parts[-1].ts.iloc[-1]) + BAR_MS - ts0) or 0
        part = df.copy()
        part["ts"] = df.ts + shift
        if parts:
            scale = float(parts[-1].close.iloc[-1]) / float(df.open.iloc[0])
        for c in ("open", "high", "low", "close"):
            part[c] = df[c] * scale
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:rows]


def soak(tmp: Path) -> None:
    bars = int(os.environ.get("AIOTRADE_BENCH_SOAK_BARS", "100000"))
    root, source = _soak_store(tmp, bars)
    cfg = _cfg(["BTC/USDT"])
    first = int(CandleStore(root).load("binance", "BTC/USDT", "5m").ts.iloc[0]) + 288 * BAR_MS
    env = start_emulator(load_replay_state(root, cfg, first), cfg)
    store = StateStore(tmp / "soak.db", namespace=cfg.live.bot_name, durable_intents=False)
    marks: list[tuple[int, float]] = []
    every = max(1, bars // 10)

    t_start = time.perf_counter()

    def on_bar(close_ms: int, reports: Any) -> None:
        k = (close_ms - first) // BAR_MS
        if k % every == 0:
            marks.append((k, _rss_mb()))
            print(f"   ... bar {k:,}: RSS {marks[-1][1]:.0f} MB, {k / (time.perf_counter() - t_start):.0f} bars/s",
                  flush=True)

    t0 = time.perf_counter()
    try:
        runner = run_replay(cfg, env, store, StaticPolicy.from_config(cfg), first, first + bars * BAR_MS, on_bar=on_bar)
    finally:
        env.close()
    wall = time.perf_counter() - t0
    marks.append((bars, _rss_mb()))
    fills = store.position("BTC/USDT").n_fills
    print(f"3. memory soak: {runner.stats.bars:,} bars of {source}, static grid, {fills:,} fills, {wall:.0f} s "
          f"({runner.stats.bars / wall:.0f} bars/s); state DB {os.path.getsize(tmp / 'soak.db') / 2**20:.1f} MB")
    print("   RSS (MB) at bar: " + ", ".join(f"{k:,}: {m:.0f}" for k, m in marks))
    base = marks[1][1] if len(marks) > 2 else marks[0][1]  # after the first tenth (warm-up, caches)
    growth = (marks[-1][1] / base - 1.0) * 100.0
    print(f"   growth after warm-up: {growth:+.1f}% (goal: flat within 10%: {'met' if abs(growth) <= 10 else 'NOT met'})")
    store.close()


def main() -> None:
    setup_logging(False, logging.WARNING)
    logging.getLogger("aiotrade.exchange").setLevel(logging.ERROR)  # replay clock resyncs are expected
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        latency(tmp)
        throughput(tmp)
        soak(tmp)


if __name__ == "__main__":
    main()
