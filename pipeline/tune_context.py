"""What a `aiotrade tune --worker` process needs to score trials of a study another process started.

The process that creates the studies stores, on each study (user attribute `aiotrade`), a payload:
the resolved config, the data fingerprint (exchange, pairs, spans, content hash), the windows, and the
out-of-fold regimes and probabilities per pair (int8 / float32, zlib, base64: a few hundred kB). A
worker loads the candles from its own candle store (`data.store_dir` of the stored config, or
`--store`), checks their content hash against the fingerprint, and rebuilds exactly the objective
the creator scores with. Candles that differ are refused with a clear message, never scored.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np

from core.config import Config, config_from_dict
from core.errors import DataError
from core.store import CandleStore
from pipeline.tune_objective import PairSeries, TuningData, Window
from strategies.risk import RunSettings
from strategies.simulator import Bars

PAYLOAD_VERSION = 1


def _pack(arr: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes(), 6)).decode("ascii")


def _unpack(text: str, dtype: Any) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype).copy()


def context_payload(cfg: Config, fingerprint: dict[str, Any], data: TuningData) -> dict[str, Any]:
    config = cfg.model_dump(mode="json")
    config["tuning"]["storage"] = None  # may hold a database password; workers name the storage themselves
    return {
        "payload_version": PAYLOAD_VERSION,
        "config": config,
        "fingerprint": fingerprint,
        "regime_names": data.regime_names,
        "windows": [[w.name, w.start_ms, w.stop_ms] for w in [*data.folds, data.holdout]],
        "pairs": {
            p.pair: {"first_ts": int(p.bars.ts[0]), "last_ts": int(p.bars.ts[-1]),
                     "regimes": _pack(p.regimes.astype(np.int8)), "probs": _pack(p.probs.astype(np.float32))}
            for p in data.pairs
        },
    }


def rebuild(payload: dict[str, Any], store_dir: str | None = None) -> tuple[Config, TuningData]:
    """The creator's config and tuning data, from the payload and this machine's candle store."""
    from models.dataset import data_fingerprint
    from pipeline.policy import market_rules

    if payload.get("payload_version") != PAYLOAD_VERSION:
        raise DataError(f"the study was created by another aiotrade version (payload {payload.get('payload_version')})",
                        "run the worker with the same aiotrade version as the process that created the study")
    cfg = config_from_dict(payload["config"], source="the study's stored config")
    store = CandleStore(store_dir or cfg.data.store_dir)
    fp = payload["fingerprint"]
    tf, exchange = fp["timeframe"], fp["exchange"]
    candles = {}
    for pair, info in fp["pairs"].items():
        if not store.exists(exchange, pair, tf):
            raise DataError(f"this machine's candle store {store.root} has no {exchange} {pair} {tf} candles",
                            f"copy or download the same candles the study was created with ({info['first']} .. "
                            f"{info['last']}), or point --store at them")
        df = store.load(exchange, pair, tf)
        candles[pair] = df[(df["ts"] >= info["first_ts"]) & (df["ts"] <= info["last_ts"])].reset_index(drop=True)
    mine = data_fingerprint(exchange, tf, candles)
    if mine["content_sha256"] != fp["content_sha256"]:
        raise DataError(f"the candles in {store.root} differ from those the study was created with "
                        f"(content hash {mine['content_sha256'][:12]} vs {fp['content_sha256'][:12]})",
                        "use a copy of the creator's candle store for the same pairs and dates")
    pairs = []
    for pair, info in payload["pairs"].items():
        df = candles[pair]
        df = df[(df["ts"] >= info["first_ts"]) & (df["ts"] <= info["last_ts"])].reset_index(drop=True)
        regimes = _unpack(info["regimes"], np.int8).astype(np.int64)
        probs = _unpack(info["probs"], np.float32).astype(np.float64)
        pairs.append(PairSeries(pair, Bars.from_frame(df), regimes, probs))
    windows = [Window(n, int(a), int(b)) for n, a, b in payload["windows"]]
    rules = {p.pair: market_rules(cfg, p.pair, float(p.bars.close[0])) for p in pairs}
    data = TuningData(pairs, rules, RunSettings.from_config(cfg, len(pairs)), list(payload["regime_names"]),
                      windows[:-1], windows[-1])
    return cfg, data
