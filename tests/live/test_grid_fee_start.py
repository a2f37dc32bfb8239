"""`aiotrade live` at start with an ATR-sized grid (`strategy.grid.range_atr_mult` > 0): its profit per
round trip after fees is estimated from the pair's recent candles (real ccxt against the loopback
emulator); real orders are refused with the parameter and the fix, paper trading only warns."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from core.config import config_from_dict
from core.errors import ConfigError
from core.store import CandleStore
from live.app import TYPICAL_ATR_BARS, LiveOptions, build_runner
from live.replay import REPLAY_KEY, REPLAY_SECRET, load_replay_state, start_emulator
from strategies.grid_profit import typical_atr_frac

from .conftest import BAR_MS, DAY_MS, SAMPLE
from .harness import REPO

START = 1672531200000 + 6 * DAY_MS  # more than TYPICAL_ATR_BARS candles of history before it
LOSING = {"levels": 12, "range_atr_mult": 3.0, "order_size_quote": 60.0}  # ~0.04% steps vs 0.2% of fees


def _cfg(url: str, tmp_path, **grid):
    return config_from_dict({
        "exchange": {"name": "binance", "base_url": url, "timeout_s": 5.0},
        "market": {"pairs": ["BTC/USDT"], "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "grid", "grid": {**LOSING, **grid}},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "live": {"state_db": str(tmp_path / "state.db"), "candle_delay_s": 0.0},
    })


@pytest.fixture()
def emulator(tmp_path, monkeypatch):
    monkeypatch.setenv("AIOTRADE_BINANCE_KEY", REPLAY_KEY)
    monkeypatch.setenv("AIOTRADE_BINANCE_SECRET", REPLAY_SECRET)
    cfg = _cfg("http://unused", tmp_path)
    env = start_emulator(load_replay_state(SAMPLE, cfg, START), cfg)
    yield env
    env.close()


def _opts(tmp_path, live: bool) -> LiveOptions:
    return LiveOptions(live=live, confirmed=live, static=True, state_db=str(tmp_path / "state.db"),
                       follow_exchange_clock=True)


def _expected_atr_pct() -> str:
    """The typical ATR over the closed candles before the emulator's clock, computed from the store."""
    now = START + BAR_MS
    c = CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m")
    c = c[(c.ts >= now - TYPICAL_ATR_BARS * BAR_MS) & (c.ts + BAR_MS <= now)]
    assert len(c) == TYPICAL_ATR_BARS
    hlc = [c[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close")]
    return f"{typical_atr_frac(*hlc, 14) * 100:.3f}%"


def test_real_orders_refuse_an_atr_grid_below_the_fees_and_its_fix_starts(emulator, tmp_path):
    with pytest.raises(ConfigError) as e:
        build_runner(_cfg(emulator.server.url, tmp_path), _opts(tmp_path, live=True))
    problem, fix = e.value.problem, e.value.fix
    assert problem.startswith("BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14), 12 levels): grid "
                              "profit per round trip after fees is -0."), problem
    assert f"every grid round trip loses money (estimated with a typical ATR of {_expected_atr_pct()} of the price)" \
        in problem
    m = re.match(r"raise grid\.range_atr_mult to at least ([0-9.]+), or use fewer levels \(at most (\d+) clear", fix)
    assert m, fix
    assert not (tmp_path / "state.db").exists(), "refused before the state DB was opened"
    assert not emulator.trading.account("replay").orders, "nothing was sent"
    # the multiple the message names clears the fees: the same start goes through
    runner = build_runner(_cfg(emulator.server.url, tmp_path, range_atr_mult=float(m.group(1))),
                          _opts(tmp_path, live=True))
    assert runner.mode == "live"
    runner.venue.close()
    runner.store.close()


def test_paper_trading_warns_about_the_same_grid_and_starts(emulator, tmp_path, runner_records):
    runner = build_runner(_cfg(emulator.server.url, tmp_path), _opts(tmp_path, live=False))
    runner.venue.close()
    runner.store.close()
    assert runner.mode == "paper"
    warned = [r.getMessage() for r in runner_records if getattr(r, "event", "") == "grid_below_fees"]
    assert len(warned) == 1 and warned[0].startswith("BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14)")
    assert "raise grid.range_atr_mult to at least" in warned[0] and "paper trading goes on" in warned[0]


def test_real_orders_do_not_start_when_the_candles_for_the_estimate_do_not_come(emulator, tmp_path):
    emulator.faults.error(503, path="/api/v3/klines", times=None)
    with pytest.raises(ConfigError) as e:
        build_runner(_cfg(emulator.server.url, tmp_path), _opts(tmp_path, live=True))
    assert e.value.problem.startswith("cannot check the ATR-sized grid of strategy against the fees: ")
    assert e.value.fix.endswith("then start again")
    assert not (tmp_path / "state.db").exists()


def test_the_cli_prints_the_refusal_as_one_clear_message(emulator, tmp_path):
    cfg = tmp_path / "aiotrade.toml"
    cfg.write_text(f"""
[exchange]
name = "binance"
base_url = "{emulator.server.url}"
[market]
pairs = ["BTC/USDT"]
[strategy]
engine = "grid"
[strategy.grid]
levels = 12
range_atr_mult = 3.0
[live]
state_db = "{tmp_path / 'state.db'}"
""")
    env = {**os.environ, "AIOTRADE_BINANCE_KEY": REPLAY_KEY, "AIOTRADE_BINANCE_SECRET": REPLAY_SECRET}
    p = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "live", "-c", str(cfg), "--live",
                        "--yes-i-understand", "--static", "--follow-exchange-clock"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    err = " ".join(p.stderr.split())
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert "error: BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14), 12 levels)" in err, p.stderr
    assert "fix: raise grid.range_atr_mult to at least" in err
    assert err.count("every grid round trip loses money") == 1


def test_a_replay_warns_about_the_same_grid_once_and_runs(tmp_path, runner_records):
    """`aiotrade live --replay` trades like paper: the check runs on the replay's own candles and warns."""
    from live.replay_session import run_replay_cli

    result = run_replay_cli(_cfg("http://unused", tmp_path), SAMPLE, START, START + 12 * BAR_MS,
                            tmp_path / "replay.db", static=True)
    result.store.close()
    assert result.runner.stats.bars == 12
    warned = [r.getMessage() for r in runner_records if getattr(r, "event", "") == "grid_below_fees"]
    assert len(warned) == 1 and warned[0].startswith("BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14)")
    assert f"typical ATR of {_expected_atr_pct()}" in warned[0]
