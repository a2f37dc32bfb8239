"""The engine state as a compact blob for the state DB (saved once per pair and bar).

The engine's five arrays are mostly empty rows (172 KB for 5,000 slots); only the rows up to the last
non-zero one of each 2-D array are stored, behind a small header, so a save costs microseconds and a
few KB of WAL. `decode(encode(s))` is the identical state (`EngineState.equals`).

The header also records each array's width (length of a 1-D array, columns of a 2-D one): a blob saved
before the engine appended scalars or columns decodes with the new ones at their fresh-state values
(`EngineState.new`). The first format (AIOE1) carried no widths; they were (29, 34, 7, 5, 9).
"""

from __future__ import annotations

import struct

import numpy as np

from strategies.state import EngineState

_FIELDS = ("sf", "si", "grid", "legacy", "orders")
_MAGIC = b"AIOE2"
_MAGIC_V1, _WIDTHS_V1 = b"AIOE1", (29, 34, 7, 5, 9)


def encode(state: EngineState) -> bytes:
    parts, rows = [], []
    for f in _FIELDS:
        a = getattr(state, f)
        if a.ndim == 2:
            n = _used_rows(a)
            a = a[:n]
        else:
            n = a.shape[0]
        rows.append(n)
        parts.append(np.ascontiguousarray(a).tobytes())
    widths = [getattr(state, f).shape[-1] for f in _FIELDS]
    return _MAGIC + struct.pack("<5q", *rows) + struct.pack("<5q", *widths) + b"".join(parts)


def _used_rows(a: np.ndarray) -> int:
    """Rows up to the last one holding a non-zero value (NaN counts, -0.0 does not: `a.any(axis=1)`).

    Found from the flat array's last non-zero element: a row-wise `any` costs ~4x as much on these
    few-column arrays, and the encoder runs every bar."""
    nonzero = a.reshape(-1) != 0
    if nonzero.size == 0:
        return 0
    last = nonzero.size - 1 - int(nonzero[::-1].argmax())
    return last // a.shape[1] + 1 if nonzero[last] else 0


def decode(blob: bytes) -> EngineState:
    size = struct.calcsize("<5q")
    rows = struct.unpack_from("<5q", blob, len(_MAGIC))
    if blob.startswith(_MAGIC):
        widths = struct.unpack_from("<5q", blob, len(_MAGIC) + size)
        offset = len(_MAGIC) + 2 * size
    elif blob.startswith(_MAGIC_V1):
        widths, offset = _WIDTHS_V1, len(_MAGIC_V1) + size
    else:
        raise ValueError("engine state blob has an unknown format (saved by another aiotrade version?)")
    template = EngineState.new(0.0)
    arrays = {}
    for f, n, w in zip(_FIELDS, rows, widths, strict=True):
        out = getattr(template, f)  # fresh-state values for anything the blob does not carry
        if w > out.shape[-1]:
            raise ValueError(f"engine state {f!r} was saved with {w} columns, this version has "
                             f"{out.shape[-1]} (saved by a newer aiotrade version?)")
        chunk = np.frombuffer(blob, dtype=out.dtype, count=n * w if out.ndim == 2 else w, offset=offset)
        offset += chunk.nbytes
        if out.ndim == 2:
            out[:n, :w] = chunk.reshape(n, w)
        else:
            out[:w] = chunk
        arrays[f] = out
    return EngineState.restore(arrays)
