"""``Frame``: a minimal column table (numpy arrays and pyarrow string arrays of equal length)
used while planning the world, before the columns go to DuckDB as an Arrow table."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa


def _length(col) -> int:
    return len(col)


def _take(col, idx: np.ndarray):
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return col.take(pa.array(np.asarray(idx, dtype=np.int64)))
    return col[idx]


def _concat(cols: list):
    if isinstance(cols[0], (pa.Array, pa.ChunkedArray)):
        arrays = []
        for c in cols:
            c = c if isinstance(c, (pa.Array, pa.ChunkedArray)) else pa.array(c, type=pa.string())
            arrays.extend(c.chunks if isinstance(c, pa.ChunkedArray) else [c])
        return pa.concat_arrays(arrays) if arrays else pa.array([], type=pa.string())
    return np.concatenate(cols)


class Frame:
    """Named columns of one length. Scalars assigned to a column are broadcast."""

    def __init__(self, **cols):
        self.cols: dict = {}
        self.n = None
        for k, v in cols.items():
            self[k] = v

    def __getitem__(self, name: str):
        return self.cols[name]

    def __setitem__(self, name: str, value) -> None:
        if np.isscalar(value) or value is None:
            if self.n is None:
                raise ValueError("cannot broadcast a scalar into an empty frame")
            value = np.full(self.n, value)
        n = _length(value)
        if self.n is None:
            self.n = n
        elif n != self.n:
            raise ValueError(f"column {name!r} has {n} rows, frame has {self.n}")
        self.cols[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self.cols

    def __len__(self) -> int:
        return self.n or 0

    def take(self, idx) -> "Frame":
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        out = Frame()
        out.n = len(idx)
        out.cols = {k: _take(v, idx) for k, v in self.cols.items()}
        return out

    @staticmethod
    def concat(frames: Iterable["Frame"]) -> "Frame":
        frames = [f for f in frames if f is not None and len(f)]
        if not frames:
            return Frame()
        names = list(frames[0].cols)
        for f in frames[1:]:
            if set(f.cols) != set(names):
                raise ValueError(f"column mismatch: {sorted(set(f.cols) ^ set(names))}")
        out = Frame()
        out.n = sum(len(f) for f in frames)
        out.cols = {k: _concat([f.cols[k] for f in frames]) for k in names}
        return out

    def to_arrow(self) -> pa.Table:
        arrays = {}
        for k, v in self.cols.items():
            arrays[k] = v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v)
        return pa.table(arrays)
