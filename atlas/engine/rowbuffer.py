"""A 2-D array that grows by rows in place: the per-use arrays of a home that gains uses daily.

WHY: a home's matrix and predictions gain one row per use, nearly always at the end (uses
arrive in time order) and now and then a few rows before it (a long shower completes after
a toilet flush that started later). ``np.insert`` or ``np.vstack`` copy the whole array for
each row, which is what made a use's cost grow with the home's history; this buffer keeps
spare capacity and shifts only the rows after an insertion.
"""

from __future__ import annotations

import numpy as np


class RowBuffer:
    """Rows of ``n_cols`` values with amortised appends and local insertions and deletions.

    Parameters
    ----------
    n_cols : int
    dtype : numpy dtype, default=float
    """

    def __init__(self, n_cols: int, dtype: type | np.dtype = float) -> None:
        self._data = np.zeros((16, n_cols), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def array(self) -> np.ndarray:
        """The rows (a view: valid until the next change)."""
        return self._data[: self._n]

    def reset(self, rows: np.ndarray) -> None:
        """Replace every row (a full rebuild)."""
        rows = np.asarray(rows, dtype=self._data.dtype)
        spare = max(16, len(rows) // 8)  # a few days of uses before the first growth
        self._data = np.zeros((len(rows) + spare, rows.shape[1]), dtype=self._data.dtype)
        self._data[: len(rows)] = rows
        self._n = len(rows)

    def insert(self, pos: int, row: np.ndarray | None = None) -> None:
        """Insert a row before ``pos`` (``pos == len(self)`` appends); zeros without ``row``."""
        if not 0 <= pos <= self._n:
            raise IndexError(f"pos={pos} is outside [0, {self._n}].")
        if self._n == len(self._data):
            size = len(self._data) + max(16, len(self._data) // 4)  # geometric: appends O(1)
            grown = np.zeros((size, self._data.shape[1]), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[pos + 1 : self._n + 1] = self._data[pos : self._n].copy()
        self._data[pos] = 0 if row is None else row
        self._n += 1

    def delete(self, pos: int) -> None:
        if not 0 <= pos < self._n:
            raise IndexError(f"pos={pos} is outside [0, {self._n}).")
        self._data[pos : self._n - 1] = self._data[pos + 1 : self._n].copy()
        self._n -= 1
