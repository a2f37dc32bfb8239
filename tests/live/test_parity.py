"""Parity: 30 days of real 5m candles replayed through emulator + live runner give the same fills and the
same final balances as `aiotrade backtest` with the same policy on the same candles.

The policy is a registered bundle whose regimes switch between a grid, a DCA and a pause, so the
comparison covers the model's per-bar predictions (live: newest row from a trailing window; backtest:
the full feature matrix), the hysteresis, regime switches with legacy exits, market orders and fees.
The backtest side is the code `aiotrade backtest --policy models:/...@champion` runs
(`pipeline.backtest.run_backtest` with the bundle's regimes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import config_from_dict
from core.store import CandleStore
from live.replay import load_replay_state, run_replay, start_emulator
from live.state import StateStore
from live.watcher import ChampionWatcher

from . import bundles

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

PAIR = "BTC/USDT"
BAR_MS = 300_000
START = int(pd.Timestamp("2023-02-01", tz="UTC").timestamp() * 1000)
END = int(pd.Timestamp("2023-03-03", tz="UTC").timestamp() * 1000)  # 30 days, 8,640 bars


@pytest.fixture(scope="module")
def store_dir(shared_ohlcv, tmp_path_factory):
    raw = pd.read_feather(shared_ohlcv / "2023_1h_5m" / "BTC_USDT-5m.feather")
    df = pd.DataFrame({"ts": raw["date"].astype("int64") // 1_000_000, **{c: raw[c] for c in
                                                                        ("open", "high", "low", "close", "volume")}})
    root = tmp_path_factory.mktemp("store")
    CandleStore(root).write("binance", PAIR, "5m", df[df["ts"] < END].reset_index(drop=True))
    return root


def _aiotrade_backtest(root, cfg, bundle):
    """`aiotrade backtest --policy models:/parity-policy@champion --from .. --to ..`, as the CLI runs it.

    The backtest computes features inside the range it loads, so it loads the warm-up the live runner
    fetched before --from as well: its first feature row is the first replayed bar, and no regime is
    armed (nothing trades) before it."""
    from pipeline.backtest import BacktestRequest, run_backtest
    from pipeline.policy_backtest import bundle_regimes

    uri = f"models:/{cfg.mlflow.model_name}@{cfg.mlflow.alias}"
    req = BacktestRequest(pairs=[PAIR], exchange="binance", timeframe="5m",
                          start_ms=START - (bundle.warmup_bars - 1) * BAR_MS, end_ms=END, policy=bundle.policy,
                          policy_label=bundle.version, regimes=bundle_regimes(uri))
    (res,) = run_backtest(cfg, req, root)
    return res, next(r for r in res.runs if r.label == bundle.version)


def test_replay_equals_backtest_fill_for_fill(store_dir, tmp_path, monkeypatch):
    root = store_dir
    uri = bundles.open_registry(tmp_path, monkeypatch)
    # 5m + 15m features: the multi-timeframe join is exercised, the warm-up (and so the replay) is short.
    # A model name of its own: `aiotrade backtest` caches bundles by URI for the whole process.
    bundles.register(bundles.bundle(bundles.mixed_policy(), pairs=(PAIR,), feature_tfs=("15m",)),
                     name="parity-policy")
    cfg = config_from_dict({
        "market": {"pairs": [PAIR], "base_timeframe": "5m", "feature_timeframes": ["15m"]},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "mlflow": {"tracking_uri": uri, "model_name": "parity-policy"},
        "live": {"price_tolerance_pct": 0.0, "amount_tolerance_pct": 0.0},
    })
    bundle = ChampionWatcher(cfg).load_current()
    env = start_emulator(load_replay_state(root, cfg, START), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name, durable_intents=False)
    try:
        runner = run_replay(cfg, env, store, bundle, START, END)
        acc = env.trading.account("replay")
        balances = acc.snapshot()["balances"]
        live = sorted((t.ts_ms, t.side, t.price, t.qty) for t in acc.trades)
        rules = runner.traders[0].market.rules
    finally:
        env.close()
    assert runner.stats.bars == (END - START) // BAR_MS
    res, run = _aiotrade_backtest(root, cfg, bundle)
    assert (res.rules.tick_size, res.rules.lot_size, res.rules.min_qty, res.rules.min_notional, res.rules.maker_fee,
            res.rules.taker_fee) == (rules.tick_size, rules.lot_size, rules.min_qty, rules.min_notional,
                                     rules.maker_fee, rules.taker_fee), "both trade on the exchange's rules"
    assert int(run.fills["ts"].min()) >= START, "nothing trades in the warm-up"
    # The emulator stamps a fill at its place on the bar's path: bar open + t/3 of the bar. Fills at the
    # same instant (t ties, e.g. two orders marketable at the open) have no meaningful order between
    # them (the exchange orders them by order id, the backtest by its table; the runner books them into
    # the engine in the table's order), so both lists are compared sorted by (time, side, price, qty).
    back = sorted((int(ts) + int(t / 3.0 * (BAR_MS - 1)), side, float(p), float(q)) for ts, t, side, p, q in
                  run.fills[["ts", "t", "side", "price", "qty"]].itertuples(index=False))
    switches = int((np.diff(run.active_regime) != 0).sum())
    print(f"\nparity: {len(live)} live fills, {len(back)} backtest fills, {switches} regime switches, "
          f"{sum(1 for f in back if f[1] == 'buy')} buys")
    assert len(back) > 50 and switches > 3, "the policy should trade and switch regimes in 30 days"
    assert len(live) == len(back)
    for i, (a, b) in enumerate(zip(live, back, strict=True)):
        assert a[:2] == b[:2] and a[2] == pytest.approx(b[2], rel=1e-12) and a[3] == pytest.approx(b[3], rel=1e-12), \
            f"fill {i} differs: live {a} vs backtest {b}"
    # Same final balances. The emulator rounds balances to 1e-12 after each change; the engine keeps
    # full float precision, so a difference below 1e-9 of the capital is rounding, not trading.
    last = run.fills.iloc[-1]
    cash, inv = float(last["cash_after"]), float(last["inventory_after"])
    usdt = balances["USDT"]["free"] + balances["USDT"]["locked"]
    btc = balances.get("BTC", {"free": 0.0, "locked": 0.0})
    btc_total = btc["free"] + btc["locked"]
    print(f"parity: final USDT live {usdt:.10f} backtest {cash:.10f} (diff {usdt - cash:.2e}); "
          f"BTC live {btc_total:.10f} backtest {inv:.10f} (diff {btc_total - inv:.2e})")
    assert abs(usdt - cash) < 1e-9 * 1000.0
    assert abs(btc_total - inv) < 1e-9
    store.close()
