"""Follow the registry alias (`mlflow.model_name@mlflow.alias`): load a new policy in the background,
validate it, and hand it to the runner, which switches every pair at the next bar boundary.

Validation, in two steps, before a bundle may trade:
1. while loading (background thread): it must be an aiotrade policy bundle whose feature spec is
   the one this code builds (`models.policy_bundle`), trained for the configured base timeframe,
   pairs and exchange (`live.policy_source.check_compatible`);
2. at the bar boundary (runner thread): it must predict on every pair's current candles (`probe`),
   and, when trading real money, its grids must make money per round trip after fees (`grid_check`,
   set by `live.app`: `GridFeeCheck`, which only warns in paper trading; an ATR-sized grid is judged
   with the typical ATR of the pairs' recent candles, fetched through the runner's venue).
A bundle failing either is refused and logged (once per version), and the current policy keeps
trading. The version is loaded by number, not by alias, so a second move of the alias during the
load cannot mix two versions.

Live trading checks the alias every `live.watch_interval_s` in a daemon thread. A replay uses
`synchronous=True`: the alias is checked at every bar and a move is loaded (still off-thread) before
that bar's cycle runs, so "the alias moved during bar k" deterministically switches at bar k's close.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.config import Config
from core.errors import AIOTradeError
from live.logs import log_event
from live.policy_source import ActivePolicy, check_compatible, no_champion
from live.runner import PolicyFeed
from models.policy_bundle import alias_version, load_policy_bundle
from models.registry import use_store

Probe = Callable[[ActivePolicy], None]
GridCheck = Callable[[ActivePolicy], None]  # raises to refuse the candidate


class ChampionWatcher(PolicyFeed):
    def __init__(self, cfg: Config, *, synchronous: bool = False, interval_s: float | None = None) -> None:
        self.cfg = cfg
        self.name, self.alias = cfg.mlflow.model_name, cfg.mlflow.alias
        self.synchronous = synchronous
        self.interval_s = interval_s if interval_s is not None else cfg.live.watch_interval_s
        self.current_version: str | None = None
        self.refused: dict[str, str] = {}  # version -> why
        self._refusals: list[tuple[str, str]] = []  # not yet taken by the runner (its events)
        self.probe: Probe | None = None
        self.grid_check: GridCheck | None = None
        self._ready: ActivePolicy | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        use_store(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)

    def load_current(self) -> ActivePolicy:
        """The policy the alias points at now (the runner's first), or a clear error."""
        version = alias_version(self.name, self.alias)
        if version is None:
            raise no_champion(self.name, self.alias)
        bundle = load_policy_bundle(f"models:/{self.name}/{version}")
        check_compatible(bundle, self.cfg)
        self.current_version = version
        return bundle

    # ---- background following ---------------------------------------------------------------------

    def start(self) -> None:
        if self.synchronous or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="policy-watcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_once()

    def check_once(self) -> None:
        """Look at the alias; load and validate a new version. Never raises (runs in a thread)."""
        try:
            version = alias_version(self.name, self.alias)
        except Exception as e:  # noqa: BLE001 - the registry may be down; trading goes on
            log_event(logging.WARNING, "watcher_error", f"cannot read {self.name}@{self.alias}: {e}")
            return
        if version is None or version == self.current_version or version in self.refused:
            return
        with self._lock:
            if self._ready is not None and self._ready.version.endswith(f"/{version}"):
                return
        log_event(logging.INFO, "policy_loading", f"{self.name}@{self.alias} moved to version {version}; loading it")
        try:
            bundle = load_policy_bundle(f"models:/{self.name}/{version}")
            check_compatible(bundle, self.cfg)
        except Exception as e:  # noqa: BLE001 - any failure refuses the bundle, never the runner
            self._refuse(version, e)
            return
        with self._lock:
            self._ready = bundle

    def _refuse(self, version: str, e: Exception) -> None:
        if isinstance(e, AIOTradeError):
            why = f"{e.problem} (fix: {e.fix})" if e.fix else e.problem
        else:
            why = f"{type(e).__name__}: {e}"
        self.refused[version] = why
        with self._lock:
            self._refusals.append((f"{self.name}/{version}", why))
        log_event(logging.ERROR, "policy_refused", f"policy {self.name}/{version} refused, the current one "
                  f"({self.name}/{self.current_version}) keeps trading: {why}", version=version)

    # ---- what the runner asks at each bar ------------------------------------------------------------

    def take_refusals(self) -> list[tuple[str, str]]:
        with self._lock:
            out, self._refusals = self._refusals, []
        return out

    def poll(self, now_ms: int) -> ActivePolicy | None:
        if self.synchronous:
            t = threading.Thread(target=self.check_once, name="policy-load")
            t.start()
            t.join()
        with self._lock:
            new, self._ready = self._ready, None
        if new is None:
            return None
        version = new.version.rsplit("/", 1)[-1]
        try:
            if self.probe is not None:
                self.probe(new)
            if self.grid_check is not None:
                self.grid_check(new)
        except Exception as e:  # noqa: BLE001 - a bundle that cannot predict or loses per round trip must not trade
            self._refuse(version, e)
            return None
        self.current_version = version
        log_event(logging.WARNING, "policy_accepted", f"policy {new.version} validated; every pair switches at "
                  "this bar", version=new.version)
        return new
