"""The newest bar's time-of-day / day-of-week features, remembered instead of recomputed.

`catalog.compute_time` takes ~25 us on a one-element array (a dozen numpy calls), a tenth of the
newest row's budget. Its time-of-day pair depends only on ts % day and its day-of-week pair only
on the weekday (ts // day + 3) % 7, so those keys recur: every day for the first pair, every week
for the second, and across pairs at the same bar. Each entry is `compute_time`'s own output for a
bar with that key (numpy's sin/cos, not a re-implementation), so it is bit-identical; if
compute_time ever depends on more than these keys, the live == full-build tests fail.
"""

from __future__ import annotations

import numpy as np

from features.catalog import compute_time

_DAY_MS = 86_400_000
_TIME_OF_DAY = ("tod_sin", "tod_cos")
_DAY_OF_WEEK = ("dow_sin", "dow_cos")
# At most one entry per distinct bar time of day (288 on 5m, 1,440 on 1m) and 7 weekdays; the bound
# only guards against sub-minute grids. dict reads and writes are atomic, so threads may share these.
_MAX_ENTRIES = 1 << 16
_by_time_of_day: dict[int, tuple[float, float]] = {}
_by_weekday: dict[int, tuple[float, float]] = {}


def put_time_features(row: np.ndarray, ts_ms: int, cols: dict[str, int]) -> None:
    """Write the time features of the bar opening at `ts_ms` into `row[cols[name]]`."""
    if not cols:
        return
    tod_key, dow_key = ts_ms % _DAY_MS, (ts_ms // _DAY_MS + 3) % 7
    tod, dow = _by_time_of_day.get(tod_key), _by_weekday.get(dow_key)
    if tod is None or dow is None:
        f = compute_time(np.array([ts_ms], dtype=np.int64))
        tod = (float(f[_TIME_OF_DAY[0]][0]), float(f[_TIME_OF_DAY[1]][0]))
        dow = (float(f[_DAY_OF_WEEK[0]][0]), float(f[_DAY_OF_WEEK[1]][0]))
        if len(_by_time_of_day) >= _MAX_ENTRIES:
            _by_time_of_day.clear()
        _by_time_of_day[tod_key] = tod
        _by_weekday[dow_key] = dow
    for names, values in ((_TIME_OF_DAY, tod), (_DAY_OF_WEEK, dow)):
        for name, value in zip(names, values, strict=True):
            j = cols.get(name)
            if j is not None:
                row[j] = value
