"""`aiotrade train` end to end on a small slice of the bundled sample, into a temp store and MLflow.

One training run (module fixture, a few seconds) is inspected by several tests: what it printed,
what MLflow holds, the registered model, the out-of-fold predictions, and that no secret leaked.
Bad input gets one clear message each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from core.config import config_from_dict
from core.errors import ConfigError, DataError
from core.store import CandleStore
from features import build_latest, make_spec
from models.dataset import minimum_bars
from models.labels import LabelRule
from models.registry import load_regime_model
from pipeline.train import STEPS, TrainContext, build_training_set, load_candles, run_train
from tests.features.conftest import load_sample

SECRET = "sentinel-secret-7f3a9c"
DB_PASSWORD = "sentinel-pw-51be2d"
BARS = 5000


def settings(root: Path, mlflow_root: Path | None = None, **model) -> dict:
    ml = mlflow_root or root
    return {
        "market": {"pairs": ["BTC/USDT", "ETH/USDT"], "base_timeframe": "5m", "feature_timeframes": ["15m", "1h"]},
        "data": {"store_dir": str(root / "candles")},
        "mlflow": {"tracking_uri": f"sqlite:///{ml}/mlruns/mlflow.db", "experiment": "train-test"},
        "model": {"horizon_bars": 12, "cv_folds": 2, "n_estimators": 30, "early_stopping_rounds": 10, "n_jobs": 1, **model},
        "tuning": {"storage": f"postgresql://bot:{DB_PASSWORD}@db.example:5432/aiotrade"},
    }


def fill_store(root: Path, bars: int = BARS, drop: slice | None = None) -> CandleStore:
    store = CandleStore(root / "candles")
    for pair in ("BTC/USDT", "ETH/USDT"):
        df = load_sample(pair).iloc[:bars]
        if drop is not None:
            df = df.drop(index=df.index[drop])
        store.write("binance", pair, "5m", df.reset_index(drop=True))
    return store


def context(root: Path, store: CandleStore, mlflow_root: Path | None = None, **model) -> TrainContext:
    console = Console(record=True, width=150, file=open(os.devnull, "w"))  # noqa: SIM115
    return TrainContext(config=config_from_dict(settings(root, mlflow_root, **model)), store=store, console=console)


@pytest.fixture(scope="module")
def shared_mlflow(tmp_path_factory) -> Path:
    """One temp MLflow store for the bad-input tests (creating its schema takes seconds)."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("AIOTRADE_BINANCE_KEY", "key-" + SECRET)
        mp.setenv("AIOTRADE_BINANCE_SECRET", SECRET)
        mp.chdir(root)
        ctx = run_train(context(root, fill_store(root)))
    return ctx, root


def test_prints_the_fold_table_with_baselines_and_a_verdict(trained):
    ctx, _ = trained
    text = ctx.console.export_text()
    for word in ("Walk-forward CV", "lightgbm", "persistence", "logistic", "majority", "macro-F1", "Regime labels"):
        assert word in text
    assert "LightGBM beats persistence" in text or "LightGBM does NOT beat persistence" in text
    assert ctx.cv.folds.groupby("fold")["model"].nunique().tolist() == [4, 4]


def test_out_of_fold_predictions_cover_each_test_bar_once_and_never_a_training_bar(trained):
    ctx, _ = trained
    oof, ds = ctx.cv.oof, ctx.dataset
    assert {"pair", "ts", "fold", "y_true", "pred_lightgbm", "pred_persistence", "p_range"} <= set(oof.columns)
    assert not oof.duplicated(["pair", "ts"]).any() and set(oof["pair"]) == {"BTC/USDT", "ETH/USDT"}
    first_test = oof.groupby("fold")["ts"].min()
    assert ds.ts.min() < first_test.min()  # the first block only trains
    truth = pd.Series(ds.y, index=pd.MultiIndex.from_arrays([ds.pair, ds.ts]))
    assert (truth.loc[list(zip(oof["pair"], oof["ts"], strict=True))].to_numpy() == oof["y_true"].to_numpy()).all()


def test_mlflow_holds_config_data_metrics_plots_spec_and_the_model(trained):
    ctx, root = trained
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns/mlflow.db")
    run = mlflow.get_run(ctx.run_id)
    assert run.data.tags["config_hash"] == ctx.config.config_hash() == run.data.params["config_hash"]
    assert run.data.tags["verdict"].startswith("LightGBM")
    for model in ("lightgbm", "persistence", "logistic", "majority"):
        assert f"cv_{model}_macro_f1_mean" in run.data.metrics
    art = root / "mlruns" / "train-test" / ctx.run_id / "artifacts"
    for name in ("plots/confusion_lightgbm.png", "plots/gain_importance.png", "plots/regime_timeline.png"):
        assert (art / name).read_bytes()[:4] == b"\x89PNG"
    fp = json.loads((art / "data_fingerprint.json").read_text())
    assert fp["pairs"]["BTC/USDT"]["rows"] == BARS and len(fp["content_sha256"]) == 64 and fp["exchange"] == "binance"
    assert "persistence" in (art / "cv" / "fold_table.txt").read_text()
    assert json.loads((art / "feature_spec.json").read_text())["hash"] == ctx.spec.hash
    assert pd.read_parquet(art / "cv" / "oof_predictions.parquet").shape[0] == len(ctx.cv.oof)
    assert not (root / "mlruns" / "0").exists()  # nothing in MLflow's Default experiment / cwd


def test_registered_model_loads_by_alias_and_predicts_the_live_row(trained):
    ctx, root = trained
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{root}/mlruns/mlflow.db")
    assert ctx.registered.name == "aiotrade-policy-regime" and ctx.registered.alias == "champion"
    loaded = load_regime_model("models:/aiotrade-policy-regime@champion")
    row = build_latest(ctx.candles["BTC/USDT"], loaded.spec)
    proba = loaded.classifier.predict_proba(row)
    assert proba.shape == (1, len(loaded.classifier.classes_)) and np.isclose(proba.sum(), 1)


def test_no_secret_reaches_mlflow(trained):
    ctx, root = trained
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns/mlflow.db")
    run = mlflow.get_run(ctx.run_id)
    blobs = [json.dumps(run.data.params), json.dumps(run.data.tags)]
    blobs += [p.read_bytes().decode("latin-1") for p in (root / "mlruns").rglob("*") if p.is_file() and p.suffix != ".db"]
    blobs.append((root / "mlruns" / "mlflow.db").read_bytes().decode("latin-1"))
    for secret in (SECRET, DB_PASSWORD):
        assert not any(secret in b for b in blobs)
    assert "postgresql://bot:***@db.example:5432/aiotrade" in blobs[-1] or "***" in " ".join(blobs)


# ------------------------------------------------------------------ bad input, one message each


def test_too_little_data_names_the_minimum_bars(tmp_path, monkeypatch, shared_mlflow):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ctx = context(tmp_path, fill_store(tmp_path, bars=1500), shared_mlflow)
    with pytest.raises(DataError) as e:
        run_train(ctx, [load_candles, build_training_set])
    assert "too little data: BTC/USDT 5m has 1500 candles" in e.value.problem
    need = minimum_bars(make_spec("5m", ["15m", "1h"]), LabelRule(12), folds=2, embargo_bars=12)
    assert need > 1500 and f"at least {need} consecutive candles" in e.value.problem
    assert "download more history" in (e.value.fix or "")


def test_timeframe_not_in_the_store_lists_what_is_there(tmp_path, monkeypatch, shared_mlflow):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = fill_store(tmp_path)
    raw = settings(tmp_path, shared_mlflow)
    raw["market"].update(base_timeframe="1m", feature_timeframes=["5m"])
    ctx = TrainContext(config=config_from_dict(raw), store=store, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    with pytest.raises(DataError) as e:
        run_train(ctx, [load_candles])
    assert "no binance BTC/USDT 1m candles" in e.value.problem and "only in 5m" in e.value.problem
    assert "set market.base_timeframe to one of 5m" in (e.value.fix or "")


def test_pair_with_gaps_is_reported_and_trained_segment_by_segment(tmp_path, monkeypatch, shared_mlflow):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ctx = context(tmp_path, fill_store(tmp_path, drop=slice(3000, 3005)), shared_mlflow)
    run_train(ctx, [load_candles, build_training_set])
    text = ctx.console.export_text()
    assert "gaps: 5 missing in 1 gap(s)" in text and "features restart after each gap" in text
    btc = ctx.dataset.ts[ctx.dataset.pair == "BTC/USDT"]
    gap_end = ctx.candles["BTC/USDT"]["ts"].iloc[3000]
    # no row whose feature warm-up spans the gap
    assert not ((btc >= gap_end) & (btc < gap_end + (ctx.spec.warmup_base_bars - 12) * 300_000)).any()


def test_embargo_shorter_than_the_horizon_is_refused(tmp_path, monkeypatch, shared_mlflow):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ctx = context(tmp_path, fill_store(tmp_path), shared_mlflow, embargo_bars=3)
    with pytest.raises(ConfigError, match="embargo_bars = 3 is shorter than model.horizon_bars = 12"):
        run_train(ctx, [load_candles, build_training_set])


def test_cli_prints_one_clear_error_without_traceback(tmp_path):
    fill_store(tmp_path, bars=300)
    raw = settings(tmp_path)
    cfg = tmp_path / "aiotrade.toml"
    cfg.write_text(
        f'[market]\npairs = ["BTC/USDT"]\nbase_timeframe = "5m"\nfeature_timeframes = ["15m"]\n'
        f'[data]\nstore_dir = "{raw["data"]["store_dir"]}"\n[mlflow]\ntracking_uri = "{raw["mlflow"]["tracking_uri"]}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", "train", "-c", str(cfg), "--timeframe", "1h", "--no-register"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "error:" in out.stderr and "fix:" in out.stderr and "Traceback" not in out.stderr


def test_steps_are_composable():
    assert [s.__name__ for s in STEPS] == [
        "load_candles", "build_training_set", "cross_validate_models", "fit_final_model", "log_model",
    ]


def test_quickstart_step_trains_on_the_quickstart_store(tmp_path, monkeypatch, shared_mlflow):
    from types import SimpleNamespace

    import pipeline.train as train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(train, "STEPS", [load_candles, build_training_set])  # the rest is tested above
    base = context(tmp_path, fill_store(tmp_path), shared_mlflow)
    qctx = SimpleNamespace(config=base.config, store=base.store, console=base.console)
    train.quickstart_step(qctx)
    assert qctx.train.run_id and len(qctx.train.dataset.y) > 0
