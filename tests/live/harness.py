"""A runner subprocess (`aiotrade live ... --follow-exchange-clock`) against an emulator in the test process,
whose frozen virtual clock the test moves bar by bar once the runner has committed the current bar."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from exchange.emulator.router import DropConnection
from live.replay import REPLAY_KEY, REPLAY_PASSPHRASE, REPLAY_SECRET, load_replay_state, start_emulator

from .conftest import SAMPLE, START_MS, dca_config

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, url: str, extra_live: str = "") -> Path:
    d = dca_config().strategy.dca
    text = f"""
[exchange]
name = "binance"
base_url = "{url}"
timeout_s = 5.0
[market]
pairs = ["BTC/USDT"]
base_timeframe = "5m"
feature_timeframes = ["1h"]
[strategy]
engine = "dca"
[strategy.dca]
base_order_quote = {d.base_order_quote}
safety_order_quote = {d.safety_order_quote}
max_safety_orders = {d.max_safety_orders}
price_deviation_pct = {d.price_deviation_pct}
step_scale = {d.step_scale}
volume_scale = {d.volume_scale}
take_profit_pct = {d.take_profit_pct}
[risk]
capital_quote = 1000.0
max_allocation_per_pair_pct = 100.0
max_exposure_pct = 90.0
[live]
state_db = "{tmp / 'state.db'}"
candle_delay_s = 0.0
retry_initial_s = 0.05
retry_max_s = 0.2
{extra_live}
"""
    path = tmp / "aiotrade.toml"
    path.write_text(text)
    return path


class Driver:
    """Runs runner lives against the in-process emulator and moves its clock in lockstep."""

    def __init__(self, tmp: Path, extra_live: str = "") -> None:
        self.cfg = dca_config()
        self.env = start_emulator(load_replay_state(SAMPLE, self.cfg, START_MS), self.cfg)
        self.tmp = tmp
        self.config_path = write_config(tmp, self.env.server.url, extra_live)
        self.db = tmp / "state.db"
        self.proc: subprocess.Popen | None = None
        self.log = open(tmp / "runner.log", "ab")  # noqa: SIM115 - kept open across lives
        self._creates_left: int | None = None
        self.env.server.router.use(self._kill_in_flight)

    def _kill_in_flight(self, req, call_next):
        resp = call_next(req)
        if self._creates_left is not None and req.method == "POST" and req.path == "/api/v3/order":
            self._creates_left -= 1
            if self._creates_left == 0 and self.proc is not None:
                os.kill(self.proc.pid, signal.SIGKILL)  # the order exists; its answer is never read
                self._creates_left = None
                raise DropConnection()
        return resp

    def spawn(self, stage: str | None, nth: int, paper: bool = False) -> None:
        env = {**os.environ, "AIOTRADE_BINANCE_KEY": REPLAY_KEY, "AIOTRADE_BINANCE_SECRET": REPLAY_SECRET,
               "AIOTRADE_BINANCE_PASSPHRASE": REPLAY_PASSPHRASE, "MLFLOW_TRACKING_URI": "sqlite:///unused.db", "PYTHONFAULTHANDLER": "1"}
        env.pop("AIOTRADE_CRASH_AT", None)
        if stage == "in_flight":
            self._creates_left = nth
        elif stage is not None:
            env["AIOTRADE_CRASH_AT"] = f"{stage}:{nth}"
        cmd = [sys.executable, "-m", "pipeline.cli.main", "live", "-c", str(self.config_path),
               *([] if paper else ["--live", "--yes-i-understand"]), "--static", "--follow-exchange-clock",
               "--json-logs"]
        if paper:
            env = {k: v for k, v in env.items() if not k.startswith("AIOTRADE_BINANCE")}
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=self.log)

    def committed_close(self) -> int | None:
        if not self.db.exists():
            return None
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'last_close_ms'").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def wait_bar(self, close_ms: int, timeout_s: float = 40.0) -> bool:
        """True when the runner committed the bar closing at close_ms; False when it died first."""
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            if (self.committed_close() or 0) >= close_ms:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to runner.log
            time.sleep(1)
        raise AssertionError(f"runner did not finish the bar closing at {close_ms} in {timeout_s}s; see runner.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
        self.env.close()
