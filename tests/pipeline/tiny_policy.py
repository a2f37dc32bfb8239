"""Helpers for tests that need a trained policy: a tiny config on a slice of the bundled sample, in a temp dir.

Tiny means seconds, not minutes: one pair, 15m/1h features, 2 CV folds, 20 boosting rounds, a handful of
Optuna trials. Everything (candle store, MLflow SQLite store, artifacts, Optuna journal) lives under
the given folder, never in the repository's mlruns/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import Config
from core.store import CandleStore

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"


# Where the bundled BTC sample rises (early January 2023) and where it falls (mid-February to 10 March).
RISING = (0, 6000)
FALLING = (12672, 7200)


def empty_mlflow_db(path: Path) -> Path:
    """An empty MLflow SQLite store at `path`: a copy of one created once per test session (creating the
    schema runs ~30 migrations, seconds each time on a busy machine)."""
    import shutil
    import tempfile

    global _TEMPLATE
    if _TEMPLATE is None or not _TEMPLATE.exists():
        import mlflow

        folder = Path(tempfile.mkdtemp(prefix="aiotrade-mlflow-template-"))
        template = folder / "mlflow.db"
        import os

        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(f"sqlite:///{template}")
        mlflow.search_experiments()  # creates the tables
        mlflow.set_tracking_uri(previous)
        # MLflow 3's set_tracking_uri also writes the environment variable: put back what was there.
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
        _TEMPLATE = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE, path)
    return path


_TEMPLATE: Path | None = None


def tiny_config(root: Path, start: int = 0, bars: int = 6000, **tuning: Any) -> Config:
    empty_mlflow_db(root / "mlruns" / "mlflow.db")
    src, dst = CandleStore(SAMPLE), CandleStore(root / "candles")
    df = src.load("binance", "BTC/USDT", "5m").iloc[start:start + bars].reset_index(drop=True)
    dst.write("binance", "BTC/USDT", "5m", df)
    return Config.model_validate({
        "market": {"pairs": ["BTC/USDT"], "feature_timeframes": ["15m", "1h"]},
        "data": {"store_dir": str(root / "candles")},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}", "model_name": "pol"},
        "model": {"n_estimators": 20, "cv_folds": 2, "n_jobs": 1},
        "tuning": {"n_trials": 4, "folds": 1, "n_jobs": 1, "storage": f"journal:{root / 'optuna.log'}", **tuning},
    })


def config_file(cfg: Config, path: Path) -> Path:
    """The config as a TOML file, for CLI subprocesses."""
    lines = []
    for section, values in cfg.model_dump(mode="json").items():
        lines.append(f"[{section}]")
        nested = []
        for k, v in values.items():
            if isinstance(v, dict):
                nested.append((k, v))
            elif v is not None:
                lines.append(f"{k} = {_toml(v)}")
        for k, sub in nested:
            lines.append(f"[{section}.{k}]")
            lines += [f"{kk} = {_toml(vv)}" for kk, vv in sub.items() if vv is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def train_policy(cfg: Config, register: bool = True) -> Any:
    """The whole `aiotrade train` pipeline on `cfg`; returns the TrainContext."""
    import mlflow
    from rich.console import Console

    from core.store import CandleStore as Store
    from models.registry import use_store
    from pipeline.policy import full_steps
    from pipeline.train import TrainContext, run_train

    use_store(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    mlflow.set_experiment(cfg.mlflow.experiment)
    ctx = TrainContext(config=cfg, store=Store(cfg.data.store_dir), console=Console(width=140, quiet=True),
                       register=register)
    return run_train(ctx, full_steps())


def register_bundle(cfg: Config, regimes: dict, min_dwell_bars: int = 0, min_regime_probability: float = 0.0) -> str:
    """A bundle with a small classifier fitted on the config's store and the given regime -> RegimeParams
    table, registered under mlflow.model_name and aliased (no tuning: seconds). Returns its version."""
    import mlflow

    from features import build_features, make_spec
    from models.classifier import RegimeClassifier
    from models.labels import LabelRule, label_regimes
    from models.policy_bundle import PolicyBundle, log_policy_bundle, set_alias
    from models.registry import use_store
    from strategies.policy import Policy

    pair = cfg.market.pairs[0]
    df = CandleStore(cfg.data.store_dir).load(cfg.exchange.name, pair, cfg.market.base_timeframe)
    spec = make_spec(cfg.market.base_timeframe, list(cfg.market.feature_timeframes))
    X = build_features(df, spec)
    y = label_regimes(df, LabelRule(cfg.model.horizon_bars), cfg.market.base_timeframe).dropna()
    rows = X.index.intersection(y.index)
    clf = RegimeClassifier(n_estimators=10, early_stopping_rounds=None, n_jobs=1).fit(X.loc[rows], y.loc[rows].to_numpy())
    policy = Policy(regimes=regimes, min_dwell_bars=min_dwell_bars, min_regime_probability=min_regime_probability)
    use_store(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    bundle = PolicyBundle(clf, policy, spec, tuple(cfg.market.pairs), cfg.exchange.name,
                          tuple(cfg.market.feature_timeframes))
    with mlflow.start_run(run_name="registered by a test"):
        version = log_policy_bundle(bundle, cfg.mlflow.model_name)
    set_alias(cfg.mlflow.model_name, cfg.mlflow.alias, version)
    return version
