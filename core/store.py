"""The Parquet candle store: one file per dataset, `<root>/<exchange>/<BASE>_<QUOTE>/<timeframe>.parquet`.

- Every load and write passes `core.candles.validate_candles`; a stored file is always valid.
  Loads are strict (`off_grid="reject"`): a stored stamp off the grid means the file was altered.
- `write` merges into what is stored, keyed on `ts`. Rule: **new data wins** for a `ts` already
  stored (the later download of a candle is the more final one: the exchange may have revised it),
  and the number of candles it replaced is reported, so nothing changes silently. Writing data that
  is already stored changes nothing: the file is not even rewritten (idempotent, mtime kept).
- Writes are atomic: a temp file in the same folder, fsync, `os.replace`, fsync of the folder. A
  crash mid-write leaves the old file intact (and at worst a stray `.*.tmp` file, which is ignored).
- A file that is truncated, corrupt or of another schema gives one DataError naming the file and
  the fix (delete it and re-download or re-import); nothing is written over it.
- One writer per dataset at a time (the CLI commands run one after another); there is no lock.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.candles import COLUMNS, VALUE_COLUMNS, CandleReport, Gap, OffGrid, empty_candles, validate_candles
from core.errors import ConfigError, DataError
from core.timeframes import SUPPORTED_TIMEFRAMES, timeframe_ms

SCHEMA_VERSION = b"aiotrade-candles/1"
_SCHEMA = pa.schema([("ts", pa.int64()), *[(c, pa.float64()) for c in VALUE_COLUMNS]])
_EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9]*$")
_ASSET_RE = re.compile(r"^[A-Z0-9]+$")


def pair_dir(pair: str) -> str:
    """`BTC/USDT` -> `BTC_USDT`; anything that is not an upper-case spot pair is a ConfigError."""
    base, sep, quote = pair.partition("/")
    if not sep or not _ASSET_RE.match(base) or not _ASSET_RE.match(quote):
        raise ConfigError(f"pair {pair!r} must look like 'BTC/USDT'", "write the spot pair as BASE/QUOTE in upper case")
    return f"{base}_{quote}"


def dir_pair(name: str) -> str:
    """`BTC_USDT` -> `BTC/USDT` (quote assets never contain '_')."""
    base, _, quote = name.rpartition("_")
    return f"{base}/{quote}"


@dataclass(frozen=True)
class WriteResult:
    path: Path
    rows_before: int
    rows_after: int
    added: int
    replaced: int
    report: CandleReport  # of the incoming candles (floored stamps, gaps within them)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)


@dataclass(frozen=True)
class DatasetInfo:
    exchange: str
    pair: str
    timeframe: str
    path: Path
    report: CandleReport | None  # None when the file could not be loaded
    error: str | None = None

    @property
    def rows(self) -> int:
        return self.report.rows if self.report else 0

    @property
    def first_ts(self) -> int | None:
        return self.report.first_ts if self.report else None

    @property
    def last_ts(self) -> int | None:
        return self.report.last_ts if self.report else None

    @property
    def gaps(self) -> tuple[Gap, ...]:
        return self.report.gaps if self.report else ()


class CandleStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, exchange: str, pair: str, timeframe: str) -> Path:
        if not _EXCHANGE_RE.match(exchange):
            raise ConfigError(f"exchange {exchange!r} is not a valid name", "use the exchange id, e.g. binance or bitget")
        timeframe_ms(timeframe)  # unknown timeframes fail here, with close matches
        return self.root / exchange / pair_dir(pair) / f"{timeframe}.parquet"

    def exists(self, exchange: str, pair: str, timeframe: str) -> bool:
        return self.path(exchange, pair, timeframe).is_file()

    def load(
        self, exchange: str, pair: str, timeframe: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pd.DataFrame:
        """Stored candles with `start_ms <= ts < end_ms` (either bound optional), validated."""
        df, _ = self.load_with_report(exchange, pair, timeframe)
        if start_ms is None and end_ms is None:
            return df
        ts = df["ts"].to_numpy()
        lo = 0 if start_ms is None else int(np.searchsorted(ts, start_ms, side="left"))
        hi = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, side="left"))
        return df.iloc[lo:hi].reset_index(drop=True)

    def load_with_report(self, exchange: str, pair: str, timeframe: str) -> tuple[pd.DataFrame, CandleReport]:
        path = self.path(exchange, pair, timeframe)
        if not path.is_file():
            raise DataError(
                f"no candles stored for {exchange} {pair} {timeframe} (expected {path})",
                f"download them (`aiotrade download --exchange {exchange} --pairs {pair} --timeframes {timeframe}`) "
                "or import a file (`aiotrade import PATH`)",
            )
        return _read(path, timeframe)

    def last_ts(self, exchange: str, pair: str, timeframe: str) -> int | None:
        """Open time of the newest stored candle, or None when nothing is stored."""
        path = self.path(exchange, pair, timeframe)
        if not path.is_file():
            return None
        ts = _read_table(path, ["ts"]).column("ts").to_numpy()
        if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
            raise DataError(f"{path}: stored candles are not sorted and unique", _refetch_fix(path))
        return int(ts[-1]) if len(ts) else None

    def write(self, exchange: str, pair: str, timeframe: str, df: pd.DataFrame, off_grid: OffGrid = "reject") -> WriteResult:
        """Validate `df` and merge it into the stored dataset (new data wins per ts), atomically."""
        path = self.path(exchange, pair, timeframe)
        new, report = validate_candles(df, timeframe, off_grid=off_grid, source=f"candles for {path}")
        old = _read(path, timeframe)[0] if path.is_file() else empty_candles()
        merged, added, replaced = _merge(old, new)
        result = WriteResult(path, len(old), len(merged), added, replaced, report)
        if result.changed:
            merged, _ = validate_candles(merged, timeframe, off_grid="reject", source=str(path))
            _atomic_write(path, merged, timeframe)
        return result

    def datasets(self) -> list[DatasetInfo]:
        """Every stored dataset with its report (rows, span, gaps), or the error that stops it loading."""
        infos = []
        for path in sorted(self.root.glob("*/*/*.parquet")):
            if path.name.startswith("."):
                continue
            exchange, pair, tf = path.parts[-3], dir_pair(path.parts[-2]), path.stem
            if tf not in SUPPORTED_TIMEFRAMES:
                infos.append(DatasetInfo(exchange, pair, tf, path, None, f"unknown timeframe {tf!r} in the file name"))
                continue
            try:
                infos.append(DatasetInfo(exchange, pair, tf, path, _read(path, tf)[1]))
            except DataError as e:
                infos.append(DatasetInfo(exchange, pair, tf, path, None, e.message))
        return infos


def _refetch_fix(path: Path) -> str:
    return f"delete {path} and download or import that dataset again (`aiotrade download` / `aiotrade import`)"


def _read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        table = pq.read_table(path, columns=columns)
    except Exception as e:  # any failure to parse means the file is unusable; say which and why
        raise DataError(f"{path}: not a readable Parquet file (truncated or corrupt): {e}", _refetch_fix(path)) from None
    wanted = [f for f in _SCHEMA if columns is None or f.name in columns]
    for field in wanted:
        if field.name not in table.column_names or table.schema.field(field.name).type != field.type:
            raise DataError(
                f"{path}: not a candle file of this store (needs {field.name}: {field.type}; has "
                f"{', '.join(f'{f.name}: {f.type}' for f in table.schema)})",
                _refetch_fix(path),
            )
    return table


def _read(path: Path, timeframe: str) -> tuple[pd.DataFrame, CandleReport]:
    table = _read_table(path)
    stored_tf = (table.schema.metadata or {}).get(b"aiotrade.timeframe")
    if stored_tf is not None and stored_tf.decode() != timeframe:
        raise DataError(f"{path}: holds {stored_tf.decode()} candles, not {timeframe}", _refetch_fix(path))
    frame = pd.DataFrame({c: table.column(c).to_numpy() for c in COLUMNS}, copy=False)
    try:
        return validate_candles(frame, timeframe, off_grid="reject", source=str(path))
    except DataError as e:
        raise DataError(f"stored file is invalid: {e.problem}", _refetch_fix(path)) from None


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Union on ts, new rows winning; returns (merged, added, replaced-with-different-values)."""
    old_ts, new_ts = old["ts"].to_numpy(), new["ts"].to_numpy()
    if not len(new_ts):
        return old, 0, 0
    if not len(old_ts):
        return new, len(new_ts), 0
    if new_ts[0] > old_ts[-1]:  # the common incremental append
        return pd.concat([old, new], ignore_index=True), len(new_ts), 0
    pos = np.minimum(np.searchsorted(old_ts, new_ts), len(old_ts) - 1)
    found = old_ts[pos] == new_ts
    same = found.copy()
    for c in VALUE_COLUMNS:
        same &= old[c].to_numpy()[pos] == new[c].to_numpy()
    added = int(np.count_nonzero(~found))
    replaced = int(np.count_nonzero(found & ~same))
    if not added and not replaced:
        return old, 0, 0
    keep_old = np.ones(len(old_ts), dtype=bool)
    keep_old[pos[found]] = False
    merged = pd.concat([old[keep_old], new], ignore_index=True)
    order = np.argsort(merged["ts"].to_numpy(), kind="stable")
    return merged.iloc[order].reset_index(drop=True), added, replaced


def _atomic_write(path: Path, df: pd.DataFrame, timeframe: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = _SCHEMA.with_metadata({b"aiotrade.schema": SCHEMA_VERSION, b"aiotrade.timeframe": timeframe.encode()})
    table = pa.Table.from_arrays([pa.array(df[c].to_numpy()) for c in COLUMNS], schema=schema)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; candles are not secret
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform allows opening a directory.
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["CandleStore", "DatasetInfo", "Gap", "WriteResult", "dir_pair", "pair_dir"]
