"""Parity: 30 days of real 5m candles replayed through emulator + live runner give the same fills and the
same final balances as the backtest (the simulator behind `aiotrade backtest`) with the same policy.

The policy is a registered bundle whose regimes switch between a grid, a DCA and a pause, so the
comparison covers the model's per-bar predictions (live: newest row from a trailing window; backtest:
the full feature matrix), the hysteresis, regime switches with legacy exits, market orders and fees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import config_from_dict
from core.store import CandleStore
from features import build_features
from live.replay import load_replay_state, run_replay, start_emulator
from live.state import StateStore
from live.watcher import ChampionWatcher
from models.evaluate import align_proba
from strategies.layout import F_CASH, F_INV
from strategies.risk import RunSettings
from strategies.simulator import simulate

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
    df = df[df["ts"] < END].reset_index(drop=True)
    root = tmp_path_factory.mktemp("store")
    CandleStore(root).write("binance", PAIR, "5m", df)
    return root, df


def _backtest(df: pd.DataFrame, bundle, rules, settings):
    """What `aiotrade backtest` runs: features over the whole history, the model's raw prediction per
    bar, then the simulator over the replayed range."""
    X = build_features(df, bundle.spec)
    proba = align_proba(bundle.classifier.predict_proba(X), bundle.classifier.classes_)
    pred = pd.DataFrame({"regime": proba.argmax(axis=1), "prob": proba.max(axis=1)}, index=X.index)
    span = df[(df["ts"] >= START) & (df["ts"] < END)].reset_index(drop=True)
    regimes = pred["regime"].reindex(span["ts"]).fillna(-1).to_numpy(np.int64)
    probs = pred["prob"].reindex(span["ts"]).fillna(0.0).to_numpy()
    return simulate(span, bundle.policy, rules, settings, regimes, probs)


def test_replay_equals_backtest_fill_for_fill(store_dir, tmp_path, monkeypatch):
    root, df = store_dir
    uri = bundles.open_registry(tmp_path, monkeypatch)
    # 5m + 15m features: the multi-timeframe join is exercised, the warm-up (and so the replay) is short.
    bundles.register(bundles.bundle(bundles.mixed_policy(), pairs=(PAIR,), feature_tfs=("15m",)))
    cfg = config_from_dict({
        "market": {"pairs": [PAIR], "base_timeframe": "5m", "feature_timeframes": ["15m"]},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "mlflow": {"tracking_uri": uri},
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
    res = _backtest(df, bundle, rules, RunSettings.from_config(cfg, n_pairs=1))
    # The emulator stamps a fill at its place on the bar's path: bar open + t/3 of the bar. Fills at the
    # same instant (t ties, e.g. two orders marketable at the open) have no meaningful order between
    # them (the exchange orders them by order id, the backtest by its table), so both lists are
    # compared sorted by (time, side, price, quantity).
    back = sorted((int(ts) + int(t / 3.0 * (BAR_MS - 1)), side, float(p), float(q)) for ts, t, side, p, q in
                  res.fills[["ts", "t", "side", "price", "qty"]].itertuples(index=False))
    switches = int((np.diff(res.active_regime) != 0).sum())
    print(f"\nparity: {len(live)} live fills, {len(back)} backtest fills, {switches} regime switches, "
          f"{sum(1 for f in back if f[1] == 'buy')} buys")
    assert len(back) > 50 and switches > 3, "the policy should trade and switch regimes in 30 days"
    # Same fills in the same order: bar, side, limit price, quantity (all on the venue's tick and lot grid).
    assert len(live) == len(back)
    for i, (a, b) in enumerate(zip(live, back, strict=True)):
        assert a[:2] == b[:2] and a[2] == pytest.approx(b[2], rel=1e-12) and a[3] == pytest.approx(b[3], rel=1e-12), \
            f"fill {i} differs: live {a} vs backtest {b}"
    # Same final balances. The emulator rounds balances to 1e-12 after each change; the engine keeps
    # full float precision, so a difference below 1e-9 of the capital is rounding, not trading.
    cash, inv = res.state.sf[F_CASH], res.state.sf[F_INV]
    usdt = balances["USDT"]["free"] + balances["USDT"]["locked"]
    btc = balances.get("BTC", {"free": 0.0, "locked": 0.0})
    btc_total = btc["free"] + btc["locked"]
    print(f"parity: final USDT live {usdt:.10f} backtest {cash:.10f} (diff {usdt - cash:.2e}); "
          f"BTC live {btc_total:.10f} backtest {inv:.10f} (diff {btc_total - inv:.2e})")
    assert abs(usdt - cash) < 1e-9 * 1000.0
    assert abs(btc_total - inv) < 1e-9
    store.close()
