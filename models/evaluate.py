"""Walk-forward evaluation of the regime model beside its baselines, on the same folds.

Per fold and model: macro-F1, balanced accuracy, log loss. Pooled over the folds (out-of-fold):
per-class precision/recall and the confusion matrix. The out-of-fold LightGBM predictions are kept
per bar and pair (`CVResult.oof`) because tuning must score strategies on regimes the model
predicted without having seen those bars.

The LightGBM fold fits are independent: given an executor (threads; LightGBM releases the GIL), they
run side by side, largest first, while the cheap baselines are fitted in the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from threadpoolctl import threadpool_limits

from models.baselines import MajorityBaseline, PersistenceBaseline, logistic_baseline
from models.classifier import RegimeClassifier
from models.dataset import Dataset
from models.labels import REGIMES
from models.split import WalkForwardSplit

MODEL_NAMES = ("lightgbm", "persistence", "logistic", "majority")
PROBA_COLUMNS = [f"p_{r}" for r in REGIMES]


@dataclass
class CVResult:
    folds: pd.DataFrame  # one row per (fold, model)
    oof: pd.DataFrame  # per bar and pair: fold, y_true, each model's prediction, LightGBM probabilities
    per_class: pd.DataFrame  # model x regime: precision, recall, support (pooled out-of-fold)
    confusion: dict[str, pd.DataFrame]  # model -> true x predicted counts
    best_iterations: list[int]

    @property
    def summary(self) -> pd.DataFrame:
        """Mean and std of each metric per model over the folds."""
        metrics = ["macro_f1", "balanced_accuracy", "log_loss"]
        agg = self.folds.groupby("model", sort=False)[metrics].agg(["mean", "std"])
        agg.columns = [f"{m}_{s}" for m, s in agg.columns]
        return agg

    def verdict(self) -> str:
        """Plain words: does LightGBM beat persistence (macro-F1 and log loss, and in how many folds)?"""
        f = self.folds.pivot(index="fold", columns="model", values="macro_f1")
        ll = self.folds.pivot(index="fold", columns="model", values="log_loss")
        wins = int((f["lightgbm"] > f["persistence"]).sum())
        m_lgb, m_per = f["lightgbm"].mean(), f["persistence"].mean()
        ll_lgb, ll_per = ll["lightgbm"].mean(), ll["persistence"].mean()
        scores = f"macro-F1 {m_lgb:.3f} vs {m_per:.3f}, better in {wins}/{len(f)} folds; log loss {ll_lgb:.3f} vs {ll_per:.3f}"
        if m_lgb > m_per and wins > len(f) / 2:
            return f"LightGBM beats persistence: {scores}"
        return f"LightGBM does NOT beat persistence: {scores}"


def cross_validate(
    ds: Dataset,
    splitter: WalkForwardSplit,
    make_model: Callable[[], RegimeClassifier],
    with_logistic: bool = True,
    on_step: Callable[[int, str], None] | None = None,
    executor: Executor | None = None,
) -> CVResult:
    """Fit and score LightGBM and the baselines on every walk-forward fold of `ds`.

    With `executor`, the LightGBM fits of all folds are submitted to it at once (largest training set
    first, so the last one to start is the shortest); without, they run here, fold by fold."""
    folds = list(splitter.split(ds.ts))
    lightgbm_fits = _submit_lightgbm(ds, folds, make_model, executor)
    rows, oof_parts, best = [], [], []
    preds: dict[str, list[np.ndarray]] = {m: [] for m in MODEL_NAMES}
    truth: list[np.ndarray] = []
    for fold in folds:
        tr, te = fold.train, fold.test
        fold_preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in MODEL_NAMES:
            if name == "logistic" and not with_logistic:
                continue
            if on_step:
                on_step(fold.number, name)
            if name == "lightgbm":
                model = lightgbm_fits[fold.number].result() if executor else _fit_lightgbm(ds, tr, make_model)
                best.append(model.best_iteration_)
                fold_preds[name] = model.predict(ds.X.iloc[te]), align_proba(model.predict_proba(ds.X.iloc[te]), model.classes_)
            else:
                fold_preds[name] = _fit_predict(name, ds, tr, te)
        for name, (pred, proba) in fold_preds.items():
            rows.append({**_fold_info(fold, ds, name), **scores(ds.y[te], pred, proba)})
            preds[name].append(pred)
        truth.append(ds.y[te])
        oof_parts.append(_oof_frame(ds, fold.number, te, fold_preds))
    y_true = np.concatenate(truth)
    used = [m for m in MODEL_NAMES if preds[m]]
    pooled = {m: np.concatenate(preds[m]) for m in used}
    return CVResult(
        folds=pd.DataFrame(rows),
        oof=pd.concat(oof_parts, ignore_index=True),
        per_class=pd.concat({m: per_class_report(y_true, pooled[m]) for m in used}, names=["model", "regime"]),
        confusion={m: confusion_frame(y_true, pooled[m]) for m in used},
        best_iterations=best,
    )


def _submit_lightgbm(ds: Dataset, folds: list, make_model: Callable[[], RegimeClassifier],
                     executor: Executor | None) -> dict[int, Future]:
    if executor is None:
        return {}
    order = sorted(folds, key=lambda f: -len(f.train))
    return {f.number: executor.submit(_fit_lightgbm, ds, f.train, make_model) for f in order}


def _fit_lightgbm(ds: Dataset, tr: np.ndarray, make_model: Callable[[], RegimeClassifier]) -> RegimeClassifier:
    return make_model().fit(ds.X.iloc[tr], ds.y[tr], ts_ms=ds.ts[tr])


def _fit_predict(name: str, ds: Dataset, tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A baseline's predictions and probabilities on the test rows."""
    y_tr = ds.y[tr]
    if name == "persistence":
        p = PersistenceBaseline().fit(ds.y_prev[tr], y_tr)
        return p.predict(ds.y_prev[te]), align_proba(p.predict_proba(ds.y_prev[te]), p.classes_)
    if name == "logistic":
        # One BLAS thread: on a busy 2-core box multithreaded BLAS made this fit 15x slower (9.8 s vs 0.6 s).
        with threadpool_limits(limits=1, user_api="blas"):
            lr = logistic_baseline().fit(ds.X.iloc[tr].to_numpy(), y_tr)
            X_te = ds.X.iloc[te].to_numpy()
            return lr.predict(X_te).astype(object), align_proba(lr.predict_proba(X_te), lr.classes_)
    m = MajorityBaseline().fit(y_tr)
    return m.predict(len(te)), align_proba(m.predict_proba(len(te)), m.classes_)


def align_proba(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probability columns in REGIMES order (0 for a regime the model never saw in training)."""
    out = np.zeros((len(proba), len(REGIMES)))
    for j, c in enumerate(classes):
        out[:, REGIMES.index(str(c))] = proba[:, j]
    return out


_SORTED = sorted(REGIMES)
_TO_SORTED = [REGIMES.index(r) for r in _SORTED]


def scores(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """proba: columns in REGIMES order (log_loss wants them in sorted label order, hence the reorder)."""
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "log_loss": float(log_loss(y_true, np.clip(proba[:, _TO_SORTED], 1e-15, 1), labels=_SORTED)),
    }


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    p, r, _, s = precision_recall_fscore_support(y_true, y_pred, labels=list(REGIMES), zero_division=0)
    return pd.DataFrame({"precision": p, "recall": r, "support": s}, index=pd.Index(REGIMES, name="regime"))


def confusion_frame(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    cm = confusion_matrix(y_true, y_pred, labels=list(REGIMES))
    return pd.DataFrame(cm, index=pd.Index(REGIMES, name="true"), columns=pd.Index(REGIMES, name="predicted"))


def _fold_info(fold, ds: Dataset, name: str) -> dict:
    return {
        "fold": fold.number,
        "model": name,
        "train_rows": len(fold.train),
        "test_rows": len(fold.test),
        "test_start_ms": fold.test_start_ms,
        "test_end_ms": fold.test_end_ms,
    }


def _oof_frame(ds: Dataset, fold_no: int, te: np.ndarray, fold_preds: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    frame = pd.DataFrame({"pair": ds.pair[te], "ts": ds.ts[te], "fold": fold_no, "y_true": ds.y[te]})
    for name, (pred, _) in fold_preds.items():
        frame[f"pred_{name}"] = pred
    frame[PROBA_COLUMNS] = fold_preds["lightgbm"][1]
    return frame
