"""PNG figures for a training run: confusion matrix, gain importance, regime timeline over price.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), so it
works headless and from any thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from models.labels import REGIMES

REGIME_COLORS = {"trend_up": "#2ca02c", "trend_down": "#d62728", "range": "#9e9e9e", "high_volatility": "#ff7f0e"}


def confusion_figure(cm: pd.DataFrame, title: str) -> Figure:
    """Row-normalised confusion matrix (recall per true regime), with the counts printed."""
    fig = _figure(6.4, 5.2)
    ax = fig.add_subplot()
    counts = cm.to_numpy()
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cm.columns)), list(cm.columns), rotation=30, ha="right")
    ax.set_yticks(range(len(cm.index)), list(cm.index))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            color = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{counts[i, j]}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(im, ax=ax, label="share of true regime")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def importance_figure(gain: pd.Series, top: int = 25) -> Figure:
    shown = gain.head(top)[::-1]
    fig = _figure(7.0, 0.28 * len(shown) + 1.2)
    ax = fig.add_subplot()
    ax.barh(list(shown.index), shown.to_numpy() / max(gain.sum(), 1e-12), color="#1f77b4")
    ax.set_xlabel("share of total split gain")
    ax.set_title(f"LightGBM gain importance (top {len(shown)} of {len(gain)})")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def timeline_figure(ts_ms: np.ndarray, close: np.ndarray, true: np.ndarray, predicted: np.ndarray, pair: str) -> Figure:
    """Close price with the true regime (top band) and the out-of-fold predicted regime (bottom band)."""
    t = pd.to_datetime(ts_ms, unit="ms")
    fig = _figure(11.0, 5.0)
    ax = fig.add_subplot()
    ax.plot(t, close, color="black", linewidth=0.6)
    lo, hi = float(np.min(close)), float(np.max(close))
    span = hi - lo or 1.0
    bands = ((true, hi + 0.08 * span, "true"), (predicted, lo - 0.08 * span, "predicted (out-of-fold)"))
    for labels, y, _ in bands:
        for regime in REGIMES:
            mask = labels == regime
            ax.scatter(t[mask], np.full(mask.sum(), y), s=4, marker="|", color=REGIME_COLORS[regime], label=None)
    handles = [ax.scatter([], [], color=REGIME_COLORS[r], label=r) for r in REGIMES]
    ax.legend(handles=handles, loc="upper left", fontsize=7, ncols=4)
    ax.set_title(f"{pair}: regimes over price (upper band true, lower band predicted out-of-fold)")
    ax.set_ylabel("close")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig
