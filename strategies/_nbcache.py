"""Drop stale numba caches of this package when any engine source changed.

numba's `cache=True` keys a function's cache on its own file only: edit `grid.py` and the cached
`simulator.run_loop`, which compiled grid code into itself, is still loaded unchanged. So at import
this compares one hash of every module the njit code spans (this package and core.market_rules)
with the hash stored beside the caches, and deletes the package's cache files when they differ.
Costs about a millisecond; an installed, unchanged tree never deletes anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SOURCES = (_HERE, _HERE.parent / "core" / "market_rules.py")


def _digest() -> str:
    h = hashlib.sha256()
    files = sorted(_HERE.glob("*.py")) + [_SOURCES[1]]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def drop_stale_caches() -> bool:
    """True when caches were dropped. Never raises: an unwritable tree just keeps numba's own checks."""
    try:
        cache_dir = _HERE / "__pycache__"
        stamp = cache_dir / "numba_sources.sha256"
        digest = _digest()
        if stamp.is_file() and stamp.read_text() == digest:
            return False
        for pattern in ("*.nbi", "*.nbc"):
            for f in cache_dir.glob(pattern):
                f.unlink(missing_ok=True)
        cache_dir.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(digest)
        tmp.replace(stamp)
        return True
    except OSError:
        return False
