"""Import candle files into the store: freqtrade JSON/feather/parquet, Binance kline CSV, CSV with a header.

Formats (chosen by extension, then by content):
- `*.json`, `*.json.gz`: freqtrade's JSON, an array of `[open_time_ms, open, high, low, close, volume]`.
- `*.feather`, `*.parquet`: freqtrade's columns (`date` as a timestamp, open..volume), or any frame
  with the column names of the generic CSV below (our own store files included).
- `*.csv` (or a `*.zip` holding one): without a header and with 12 columns, Binance's public-data
  klines (open_time, open, high, low, close, volume, close_time, ...). Their stamps switched from
  milliseconds to microseconds in 2025; the unit is detected per row. With a header: the generic CSV,
  one of ts/timestamp/date/datetime/time/open_time plus open, high, low, close, volume.
Numeric stamps in seconds, ms, µs or ns are converted to ms (by magnitude, per row); date strings
without a zone are taken as UTC.

Pair and timeframe come from the options or the file name (`BTC_USDT-5m.json`, Binance's
`BTCUSDT-5m-2025-01.csv`; a Binance CSV also tells its timeframe by close_time - open_time). An
option that contradicts the file name is an error for a file; for a folder the options select the
files to import. Every file is read and validated before anything is written, so one bad file in a
folder stops the import with nothing changed.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.candles import COLUMNS, VALUE_COLUMNS, CandleReport, OffGrid, epoch_to_ms, validate_candles
from core.errors import ConfigError, DataError
from core.store import CandleStore, WriteResult, pair_dir
from core.timeframes import SUPPORTED_TIMEFRAMES, timeframe_ms

SUFFIXES = (".json.gz", ".json", ".feather", ".parquet", ".csv", ".zip")
TS_NAMES = ("ts", "timestamp", "date", "datetime", "time", "open_time", "open time")
# Binance symbols have no separator; these quote assets are tried longest first.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")
_FREQTRADE_NAME = re.compile(r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>\d+[mhdw])(?:-spot)?$")
_BINANCE_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<tf>\d+[mhdw])-\d{4}-\d{2}(?:-\d{2})?$")
_UNIT_NAMES = {"s": "seconds", "us": "microseconds", "ns": "nanoseconds"}


@dataclass(frozen=True)
class ParsedFile:
    """A file read into the candle columns (ts already in ms), not yet validated."""

    path: Path
    fmt: str
    frame: pd.DataFrame
    pair: str | None = None  # from the file name
    timeframe: str | None = None  # from the file name or the Binance close_time
    converted: dict[str, int] = field(default_factory=dict)  # unit -> rows converted to ms


@dataclass(frozen=True)
class PreparedImport:
    parsed: ParsedFile
    exchange: str
    pair: str
    timeframe: str
    candles: pd.DataFrame
    report: CandleReport


@dataclass(frozen=True)
class ImportOutcome:
    prepared: list[PreparedImport]
    written: list[WriteResult]
    skipped: list[tuple[Path, str]]  # files in a folder that were not imported, and why


def import_path(
    store: CandleStore,
    path: Path,
    exchange: str,
    pair: str | None = None,
    timeframe: str | None = None,
    off_grid: OffGrid = "floor",
) -> ImportOutcome:
    """Read and validate every file under `path` first; only then merge each into the store."""
    prepared, skipped = prepare_import(path, exchange, pair, timeframe, off_grid)
    written = [store.write(p.exchange, p.pair, p.timeframe, p.candles) for p in prepared]
    return ImportOutcome(prepared, written, skipped)


def prepare_import(
    path: Path, exchange: str, pair: str | None = None, timeframe: str | None = None, off_grid: OffGrid = "floor"
) -> tuple[list[PreparedImport], list[tuple[Path, str]]]:
    if pair is not None:
        pair_dir(pair)  # a malformed --pair fails before any file is read
    if timeframe is not None:
        timeframe_ms(timeframe)
    if path.is_dir():
        return _prepare_folder(path, exchange, pair, timeframe, off_grid)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder", "check the path")
    parsed = read_candle_file(path)
    return [_prepare(parsed, exchange, _pick(parsed, "pair", pair), _pick(parsed, "timeframe", timeframe), off_grid)], []


def _prepare_folder(
    folder: Path, exchange: str, pair: str | None, timeframe: str | None, off_grid: OffGrid
) -> tuple[list[PreparedImport], list[tuple[Path, str]]]:
    prepared, skipped = [], []
    for f in sorted(folder.iterdir()):
        if f.is_dir():
            skipped.append((f, "a folder (not searched; import it on its own)"))
            continue
        if not f.name.lower().endswith(SUFFIXES):
            skipped.append((f, "not a candle file type"))
            continue
        pair_in_name, tf_in_name = names_from_filename(f)
        if (pair and pair_in_name and pair != pair_in_name) or (timeframe and tf_in_name and timeframe != tf_in_name):
            skipped.append((f, "other pair or timeframe than selected"))
            continue
        parsed = read_candle_file(f)
        prepared.append(_prepare(parsed, exchange, _pick(parsed, "pair", pair), _pick(parsed, "timeframe", timeframe), off_grid))
    if not prepared:
        raise DataError(
            f"{folder}: no candle files to import ({len(skipped)} other file(s) skipped)",
            f"the folder needs files ending in {', '.join(SUFFIXES)} (check --pair/--timeframe)",
        )
    return prepared, skipped


def _pick(parsed: ParsedFile, what: str, given: str | None) -> str | None:
    found = getattr(parsed, what)
    if given and found and given != found:
        raise ConfigError(
            f"{parsed.path}: the file holds {found} candles (by its {'name' if what == 'pair' else 'name or close times'}), "
            f"but --{what} {given} was given",
            f"drop --{what}, or pass --{what} {found}",
        )
    return given or found


def _known(parsed: ParsedFile, what: str, value: str | None) -> str:
    if value is None:
        raise ConfigError(
            f"{parsed.path}: cannot tell the {what} from the file name",
            f"pass --{what} (e.g. --{what} {'BTC/USDT' if what == 'pair' else '5m'}), or name the file like BTC_USDT-5m.csv",
        )
    return value


def _prepare(parsed: ParsedFile, exchange: str, pair_: str | None, tf_: str | None, off_grid: OffGrid) -> PreparedImport:
    pair, tf = _known(parsed, "pair", pair_), _known(parsed, "timeframe", tf_)
    pair_dir(pair)
    if parsed.frame.empty:
        raise DataError(f"{parsed.path}: holds no candles", "check that it is the right file")
    candles, report = validate_candles(parsed.frame, tf, off_grid=off_grid, source=str(parsed.path))
    _check_spacing(candles, tf, str(parsed.path))
    return PreparedImport(parsed, exchange, pair, tf, candles, report)


def _check_spacing(candles: pd.DataFrame, tf: str, source: str) -> None:
    """1h candles imported as 5m would pass the grid check and look like gaps; catch that here."""
    if len(candles) < 3:
        return
    closest_ms = int(np.diff(candles["ts"].to_numpy()).min())
    if closest_ms > timeframe_ms(tf):
        guess = next((t for t in SUPPORTED_TIMEFRAMES if timeframe_ms(t) == closest_ms), None)
        hint = f"they look like {guess} candles: pass --timeframe {guess}" if guess else "check --timeframe"
        raise DataError(f"{source}: no two candles are one {tf} apart (closest: {closest_ms // 60_000} min)", hint)


def names_from_filename(path: Path) -> tuple[str | None, str | None]:
    """(pair, timeframe) from `BTC_USDT-5m.json` or `BTCUSDT-5m-2025-01.csv`; None where unknown."""
    stem = path.name
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    m = _FREQTRADE_NAME.match(stem)
    if m:
        tf = m["tf"] if m["tf"] in SUPPORTED_TIMEFRAMES else None
        return f"{m['base']}/{m['quote']}", tf
    m = _BINANCE_NAME.match(stem)
    if m:
        tf = m["tf"] if m["tf"] in SUPPORTED_TIMEFRAMES else None
        quote = next((q for q in _QUOTES if m["symbol"].endswith(q) and len(m["symbol"]) > len(q)), None)
        return (f"{m['symbol'][: -len(quote)]}/{quote}" if quote else None), tf
    return None, None


def read_candle_file(path: Path) -> ParsedFile:
    """Parse one file into the candle columns, ts converted to ms. Raises DataError for bad content."""
    name = path.name.lower()
    pair, tf = names_from_filename(path)
    try:
        if name.endswith((".json", ".json.gz")):
            frame, converted = _read_freqtrade_json(path)
            return ParsedFile(path, "freqtrade-json", frame, pair, tf, converted)
        if name.endswith((".feather", ".parquet")):
            raw = pd.read_feather(path) if name.endswith(".feather") else pd.read_parquet(path)
            frame, converted = normalise_columns(raw, str(path))
            return ParsedFile(path, name.rsplit(".", 1)[1], frame, pair, tf, converted)
        if name.endswith((".csv", ".zip")):
            return _read_csv(path, _csv_text(path), pair, tf)
    except (DataError, ConfigError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as {name.rsplit('.', 1)[-1]}: {e}", "check that the file is complete (download it again)") from None
    raise DataError(f"{path}: unknown file type", f"import files ending in {', '.join(SUFFIXES)}")


def _read_freqtrade_json(path: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = json.load(f)
    if not isinstance(rows, list) or (rows and not all(isinstance(r, list) and len(r) >= 6 for r in rows)):
        raise DataError(
            f"{path}: not freqtrade candle JSON (needs an array of [open_time_ms, open, high, low, close, volume])",
            "export with freqtrade's json data format, or use a CSV with a header",
        )
    return normalise_columns(pd.DataFrame([r[:6] for r in rows], columns=list(COLUMNS)), str(path))


def _csv_text(path: Path) -> str:
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(f"{path}: holds {len(members)} CSV files, expected one", "unzip it and import the CSV files")
            return z.read(members[0]).decode("utf-8-sig")
    return path.read_text(encoding="utf-8-sig")  # -sig: a BOM would otherwise stick to the first column name


def _read_csv(path: Path, text: str, pair: str | None, tf: str | None) -> ParsedFile:
    first = text.lstrip().split("\n", 1)[0].split(",")
    if not first[0].strip() or not _is_number(first[0]):  # a header row: the generic CSV
        frame, converted = normalise_columns(pd.read_csv(io.StringIO(text)), str(path))
        return ParsedFile(path, "csv", frame, pair, tf, converted)
    if len(first) != 12:
        raise DataError(
            f"{path}: a CSV without a header row and {len(first)} columns; headerless CSV must be "
            "Binance's 12-column kline format",
            "add a header row: ts (or timestamp/date/open_time), open, high, low, close, volume",
        )
    raw = pd.read_csv(io.StringIO(text), header=None, dtype={0: "int64", 6: "int64"})
    frame, converted = _numeric_ts_frame(raw.iloc[:, :6].set_axis(list(COLUMNS), axis=1), str(path))
    open_ms, close_ms = frame["ts"].to_numpy(), epoch_to_ms(raw[6].to_numpy())
    return ParsedFile(path, "binance-csv", frame, pair, tf or _timeframe_from_close(open_ms, close_ms), converted)


def _timeframe_from_close(open_ms: np.ndarray, close_ms: np.ndarray) -> str | None:
    # Binance's close_time is the last millisecond (or µs) of the candle.
    if not len(open_ms):
        return None
    durations, counts = np.unique(close_ms - open_ms + 1, return_counts=True)
    duration_ms = int(durations[np.argmax(counts)])
    return next((t for t in SUPPORTED_TIMEFRAMES if timeframe_ms(t) == duration_ms), None)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def normalise_columns(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """A frame with a time column and open..volume (any case) -> the candle columns, ts in ms."""
    by_lower = {str(c).strip().lower(): c for c in raw.columns}
    ts_col = next((by_lower[n] for n in TS_NAMES if n in by_lower), None)
    missing = [c for c in VALUE_COLUMNS if c not in by_lower]
    if ts_col is None or missing:
        needed = ([] if ts_col is not None else ["one of " + "/".join(TS_NAMES)]) + missing
        raise DataError(
            f"{source}: missing column(s): {', '.join(needed)}; found: {', '.join(map(str, raw.columns)) or '(none)'}",
            "name the columns ts (or timestamp/date/open_time), open, high, low, close, volume",
        )
    frame = pd.DataFrame({"ts": raw[ts_col], **{c: raw[by_lower[c]] for c in VALUE_COLUMNS}})
    col = frame["ts"]
    if col.dtype.kind in "iuf":
        return _numeric_ts_frame(frame, source)
    if col.dtype.kind == "O" or pd.api.types.is_string_dtype(col):
        as_number = pd.to_numeric(col, errors="coerce")
        if as_number.notna().all():
            return _numeric_ts_frame(frame.assign(ts=as_number), source)
        try:
            col = pd.to_datetime(col, utc=True, format="ISO8601")
        except (ValueError, TypeError) as e:
            raise DataError(f"{source}: cannot read the times in column {ts_col!r}: {e}", "use epoch ms or ISO dates (2023-01-01T00:00:00Z)") from None
    if isinstance(col.dtype, pd.DatetimeTZDtype) or col.dtype.kind == "M":
        utc = col.dt.tz_convert("UTC") if col.dt.tz is not None else col.dt.tz_localize("UTC")
        ms = utc.dt.tz_localize(None).to_numpy(dtype="datetime64[ms]").view("int64")
        return _numeric_values(frame.assign(ts=ms), source), {}
    raise DataError(f"{source}: column {ts_col!r} has type {col.dtype}, not times", "use epoch ms or ISO dates")


def _numeric_ts_frame(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    raw_ts = frame["ts"].to_numpy()
    if raw_ts.dtype.kind == "f" and not np.isfinite(raw_ts).all():
        bad = int(np.flatnonzero(~np.isfinite(raw_ts))[0])
        raise DataError(f"{source}: row {bad} has no open time", "every candle needs a timestamp")
    # Same magnitude bands as core.candles.epoch_to_ms: s < 1e11 <= ms < 1e14 <= us < 1e17 <= ns.
    bands = np.digitize(np.abs(raw_ts.astype(np.int64)), [10**11, 10**14, 10**17])
    counts = np.bincount(bands, minlength=4)
    converted = {u: int(n) for u, n in zip(("s", "ms", "us", "ns"), counts, strict=True) if n and u != "ms"}
    return _numeric_values(frame.assign(ts=epoch_to_ms(raw_ts)), source), converted


def _numeric_values(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    for c in VALUE_COLUMNS:
        if frame[c].dtype.kind not in "iuf":
            as_number = pd.to_numeric(frame[c], errors="coerce")
            bad = np.flatnonzero(as_number.isna().to_numpy() & frame[c].notna().to_numpy())
            if len(bad):
                raise DataError(
                    f"{source}: column {c} has a non-number at row {bad[0]}: {frame[c].iloc[bad[0]]!r}",
                    "fix or remove that row",
                )
            frame = frame.assign(**{c: as_number})
    return frame.astype({c: "float64" for c in VALUE_COLUMNS})


def describe_units(converted: dict[str, int]) -> str:
    """`converted 744 timestamp(s) from microseconds to ms` or ''."""
    parts = [f"{n} from {_UNIT_NAMES[u]}" for u, n in sorted(converted.items())]
    return f"converted timestamps to ms: {', '.join(parts)}" if parts else ""
