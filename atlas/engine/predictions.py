"""The current classifier's outputs per use, kept row-aligned with the feature rows.

WHY a cache apart from the model: predictions change for two reasons, a new model (every row)
and new or changed rows (only those). Keeping them in buffers aligned with
:class:`~atlas.engine.rows.FeatureRows` lets an ingest predict only the rows it changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlas.classifier import HierarchicalClassifier
from atlas.domain import LEVELS
from atlas.engine.preview import level_predictions
from atlas.engine.rowbuffer import RowBuffer
from atlas.engine.rows import FeatureRows


class Predictions:
    """Valve probabilities and, per level, the argmax label and its probability per row."""

    def __init__(self) -> None:
        self._buffers: dict[str, RowBuffer] = {}
        self._rows: FeatureRows | None = None

    @property
    def valid(self) -> bool:
        return bool(self._buffers)

    def clear(self) -> None:
        """Forget every prediction (no model, or rows rebuilt)."""
        if self._rows is not None:
            for buf in self._buffers.values():
                self._rows.unalign(buf)
        self._buffers, self._rows = {}, None

    def refresh(self, clf: HierarchicalClassifier, rows: FeatureRows, X: np.ndarray) -> None:
        """Predict every row of ``X`` (aligned with ``rows``)."""
        self.clear()
        proba = clf.predict_proba(X)
        outputs = {"proba": proba}
        for lv, (labels, conf) in level_predictions(clf, X, proba).items():
            outputs[f"{lv}_label"] = labels[:, None]
            outputs[f"{lv}_conf"] = conf[:, None]
        for name, values in outputs.items():
            buf = RowBuffer(values.shape[1], dtype=values.dtype)
            buf.reset(values)
            rows.align(buf)
            self._buffers[name] = buf
        self._rows = rows

    def refresh_rows(
        self, clf: HierarchicalClassifier, X: np.ndarray, positions: Sequence[int]
    ) -> None:
        """Predict only ``positions`` of ``X`` (the rows an ingest changed)."""
        if not positions:
            return
        part = X[list(positions)]
        proba = clf.predict_proba(part)
        self._buffers["proba"].array[positions] = proba
        for lv, (labels, conf) in level_predictions(clf, part, proba).items():
            self._buffers[f"{lv}_label"].array[positions, 0] = labels
            self._buffers[f"{lv}_conf"].array[positions, 0] = conf

    @property
    def proba(self) -> np.ndarray | None:
        return self._buffers["proba"].array if self.valid else None

    def label(self, level: str, row: int) -> str:
        return str(self._buffers[f"{level}_label"].array[row, 0])

    def labels(self, level: str) -> np.ndarray:
        return self._buffers[f"{level}_label"].array[:, 0]

    def confidence(self, row: int) -> dict[str, float]:
        return {lv: float(self._buffers[f"{lv}_conf"].array[row, 0]) for lv in LEVELS}

    def predicted(self, row: int) -> dict[str, str]:
        return {lv: self.label(lv, row) for lv in LEVELS}
