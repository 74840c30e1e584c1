"""The home's feature matrix, kept equal to a full :func:`build_matrix` as uses arrive.

WHY incremental: a row depends on its own use, on the uses within a day before it and a
minute after it (:data:`~atlas.engine.featurize.CONTEXT_BEFORE_S`), and on the rules'
home-wide context (appliance cycles, the toilet reference). Rebuilding every row for each new
use made a use's cost grow with the home's history (300 ms at day 28, ``atlas bench
capacity``). :class:`FeatureRows` computes the new uses' rows and the rows whose context
they change, in a slice of the home around them; the rest stays. A full rebuild happens only
when the codebook projection changes. ``tests/atlas/test_engine_incremental.py`` checks the
result against a full rebuild after random sequences of ingests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from atlas.context_prior import WINDOW_S
from atlas.engine.featurize import (
    CONTEXT_AFTER_S,
    CONTEXT_BEFORE_S,
    CodeProjection,
    Matrix,
    build_matrix,
)
from atlas.engine.rowbuffer import RowBuffer
from atlas.engine.uselog import UseLog
from atlas.features import MAX_GAP_S, RECENT_WINDOW_S
from atlas.homespec import HomeSpec
from atlas.uses import WaterUse
from rules import RuleConfig, build_views
from rules.context_index import ContextIndex

#: An ingest: the new use and the use of the same id it replaced (None if it is new).
Change = tuple[WaterUse | None, WaterUse]


class FeatureRows:
    """Feature rows of a home's uses in :class:`UseLog` order (before any fleet adjustment).

    Parameters
    ----------
    spec : HomeSpec
    """

    def __init__(self, spec: HomeSpec) -> None:
        self.spec = spec
        self._rules_config = RuleConfig.from_home_spec(spec)
        self._index = ContextIndex(self._rules_config)
        self._X: RowBuffer | None = None
        self._aligned: list[RowBuffer] = []
        self.use_ids: list[str] = []
        self.rule_category: list[str | None] = []
        self.physics_columns: tuple[int, int] = (0, 0)
        self._row: dict[str, int] = {}

    @property
    def built(self) -> bool:
        return self._X is not None

    @property
    def X(self) -> np.ndarray:
        """The rows (a view, valid until the next update)."""
        if self._X is None:
            raise RuntimeError("the rows are not built yet; call rebuild().")
        return self._X.array

    def row(self, use_id: str) -> int:
        return self._row[use_id]

    def __contains__(self, use_id: str) -> bool:
        return use_id in self._row

    def matrix(self) -> Matrix:
        """The rows as a :class:`Matrix` (copies the ids: for fits and rounds, not per use)."""
        return Matrix(tuple(self.use_ids), self.X, tuple(self.rule_category), self.physics_columns)

    def align(self, buffer: RowBuffer) -> None:
        """Keep ``buffer`` row-aligned: rows are inserted and deleted in it as in the matrix."""
        self._aligned.append(buffer)

    def unalign(self, buffer: RowBuffer) -> None:
        self._aligned = [b for b in self._aligned if b is not buffer]

    def rebuild(self, log: UseLog, projection: CodeProjection | None) -> None:
        """Every row from scratch (after a codebook change, or to start)."""
        uses = log.sorted
        self._index = ContextIndex.of(build_views(uses, log.features), self._rules_config)
        m = build_matrix(
            self.spec,
            uses,
            log.features,
            log.lines,
            log.codes,
            projection,
            rule_context=self._index.context(u.use_id for u in uses),
        )
        self._aligned = []  # what was aligned belongs to the old rows
        self._X = RowBuffer(m.X.shape[1])
        self._X.reset(m.X)
        self.use_ids = list(m.use_ids)
        self.rule_category = list(m.rule_category)
        self.physics_columns = m.physics_columns
        self._row = {uid: i for i, uid in enumerate(self.use_ids)}

    def update(
        self, log: UseLog, projection: CodeProjection | None, changes: Sequence[Change]
    ) -> list[int]:
        """Bring the rows up to date after ``log`` took ``changes``; returns the rows computed.

        Inserted rows (new uses) are included; aligned buffers get zero rows there, for the
        caller to fill.
        """
        if self._X is None:
            raise RuntimeError("the rows are not built yet; call rebuild().")
        touched: set[str] = set()
        moments = []
        for old, new in changes:
            if old is not None:
                self._delete(self._row[old.use_id])
                moments.append(old)
            moments.append(new)
            touched |= self._index.add(build_views([new], log.features)[0])
        for new in sorted((new for _, new in changes), key=lambda u: (u.t, u.use_id)):
            self._insert(log.position(new.use_id), new.use_id)
        dirty = {self._row[uid] for uid in touched}
        for use in moments:
            dirty.update(_context_followers(log, use))
        rows = sorted(dirty)
        self._compute(log, projection, rows)
        return rows

    def _delete(self, pos: int) -> None:
        for buf in (self._X, *self._aligned):
            buf.delete(pos)
        del self._row[self.use_ids[pos]]
        del self.use_ids[pos], self.rule_category[pos]
        self._reindex(pos)

    def _insert(self, pos: int, use_id: str) -> None:
        for buf in (self._X, *self._aligned):
            buf.insert(pos)
        self.use_ids.insert(pos, use_id)
        self.rule_category.insert(pos, None)
        self._reindex(pos)

    def _reindex(self, start: int) -> None:
        for i in range(start, len(self.use_ids)):
            self._row[self.use_ids[i]] = i

    def _compute(self, log: UseLog, projection: CodeProjection | None, rows: list[int]) -> None:
        """Recompute ``rows`` within the slice of uses their context reaches."""
        uses = log.sorted
        context: set[int] = set()
        for pos in rows:
            t = uses[pos].t
            context.update(
                log.positions_between(
                    t - timedelta(seconds=CONTEXT_BEFORE_S), t + timedelta(seconds=CONTEXT_AFTER_S)
                )
            )
        subset = sorted(context)
        local = {pos: i for i, pos in enumerate(subset)}
        m = build_matrix(
            self.spec,
            [uses[i] for i in subset],
            log.features,
            log.lines,
            log.codes,
            projection,
            rows=[local[pos] for pos in rows],
            rule_context=self._index.context(uses[pos].use_id for pos in rows),
        )
        assert self._X is not None
        self._X.array[rows] = m.X
        for pos, category in zip(rows, m.rule_category, strict=True):
            self.rule_category[pos] = category


def _context_followers(log: UseLog, use: WaterUse) -> list[int]:
    """Rows whose context ``use`` enters (or leaves): the uses after it whose gap or recent
    count it sets, and the uses just before it whose hand-wash context it is."""
    uses = log.sorted
    out = list(log.positions_between(use.t, use.t + timedelta(seconds=RECENT_WINDOW_S)))
    out += log.positions_between(use.t - timedelta(seconds=WINDOW_S[1]), use.t)
    waiting = set(use.lines)  # the next use on each line takes its gap from this one
    limit = use.t + timedelta(seconds=MAX_GAP_S)
    for pos in range(log.positions_between(use.t, limit).start, len(uses)):
        other = uses[pos]
        if not waiting or other.t > limit:
            break
        if other.t > use.t and waiting & set(other.lines):
            out.append(pos)
            waiting -= set(other.lines)
    return out
