"""What a calibrated home computes *inside itself* for the fleet: aggregates, never records.

WHY a separate object: privacy is easiest to check where it is enforced. :class:`LocalHome`
holds the home's own uses, events and labels (as the home's database does) and every method
returns model parameters or aggregate statistics: codebook atoms, code moments, per-category
sufficient statistics (categories with >= ``min_count`` labels only), per-level, per-week
effective accuracy counts, and how often stand-in picks were right per (category, lines).
:func:`atlas.fleet.build_fleet` calls only these methods, and refuses a home that opted out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from atlas.domain import LEVELS
from atlas.engine.featurize import CodeProjection, Matrix, build_matrix
from atlas.engine.records import LabelRecord
from atlas.estimate import estimate_accuracy
from atlas.events import Event
from atlas.fleet.accuracy import AccuracyCount
from atlas.fleet.category import (
    CategoryStats,
    FleetCategoryModel,
    category_likelihood,
    category_stats,
    transfer_features,
)
from atlas.fleet.codebook import CodeMoments, code_moments
from atlas.fleet.standin import StandinCounts, standin_counts, standin_scores
from atlas.homespec import HomeSpec
from atlas.transient import TransientFeatures, transient_features
from atlas.uses import WaterUse
from codebook import Codebook


@dataclass
class LocalHome:
    """One home's own data, as its engine/database holds it (never sent anywhere).

    Parameters
    ----------
    home_id : str
    spec : HomeSpec
    installed_at : datetime
    uses : sequence of WaterUse
    events : sequence of Event
        Every event of ``uses`` (their waveforms are encoded locally).
    labels : sequence of LabelRecord
        The home's labels (guided and active), e.g. ``CalibrationEngine.labels``.
    features : mapping of event id to TransientFeatures, optional
    opt_out : bool, default=False
        The homeowner declined fleet use: the home's data serve nothing but itself.
    """

    home_id: str
    spec: HomeSpec
    installed_at: datetime
    uses: Sequence[WaterUse]
    events: Sequence[Event]
    labels: Sequence[LabelRecord]
    features: Mapping[str, TransientFeatures] = field(default_factory=dict)
    opt_out: bool = False
    _atoms: dict = field(default_factory=dict, repr=False)
    _codes: dict = field(default_factory=dict, repr=False)
    _matrices: dict = field(default_factory=dict, repr=False)

    def _check_shared(self) -> None:
        if self.opt_out:
            raise PermissionError(f"home {self.home_id!r} opted out of the fleet.")

    def atoms(self, params: Mapping, random_state: int = 0) -> np.ndarray:
        """This home's codebook atoms (fitted locally once on all its waves; parameters only)."""
        self._check_shared()
        key = (tuple(sorted((k, str(v)) for k, v in params.items())), random_state)
        if key not in self._atoms:
            cb = Codebook(**{**dict(params), "random_state": random_state})
            cb.fit([e.samples for e in self.events])
            self._atoms[key] = cb.components_.copy()
        return self._atoms[key]

    def _event_codes(self, codebook: Codebook) -> dict[str, np.ndarray]:
        if codebook.version_ not in self._codes:
            codes = codebook.transform([e.samples for e in self.events])
            self._codes = {
                codebook.version_: dict(zip((e.event_id for e in self.events), codes, strict=True))
            }
        return self._codes[codebook.version_]

    def code_moments(self, codebook: Codebook) -> CodeMoments:
        """Moments of this home's use-pooled codes under the fleet ``codebook``."""
        self._check_shared()
        return code_moments(codebook, self._sorted_uses(), self._event_codes(codebook))

    def category_stats(self, projection: CodeProjection, *, min_count: int = 3) -> CategoryStats:
        """Per-category sufficient statistics of the labeled uses' transferable features."""
        self._check_shared()
        matrix = self._matrix(projection)
        T, names = transfer_features(matrix.X, projection.components.shape[0])
        cats = self._label_categories()
        return category_stats(T, [cats.get(u) for u in matrix.use_ids], names, min_count=min_count)

    def standin_counts(
        self,
        model: FleetCategoryModel,
        projection: CodeProjection,
        *,
        threshold: float,
        floor: float,
        unseen: float,
    ) -> StandinCounts:
        """How often the fleet's stand-in picks were right on this home's guided labels.

        ``model`` should be the fleet category model built *without* this home, so the count
        measures what a new home would get (:mod:`atlas.fleet.standin`).
        """
        self._check_shared()
        matrix = self._matrix(projection)
        like = category_likelihood(
            model,
            [str(c) for c in self.spec.hierarchy.category_of_fixture.values()],
            matrix.X,
            projection.components.shape[0],
            codes_comparable=True,
            floor=floor,
            unseen=unseen,
        )
        scores = standin_scores(self.spec, matrix.X, matrix.physics_columns, like)
        # guided labels only: announced, so right, and not chosen by the model's uncertainty
        # (active labels carry the homeowner's wrong answers and over-sample hard uses)
        valves = {
            r.use_id: r.label for r in self.labels if r.level == "valve" and r.source == "guided"
        }
        return standin_counts(self.spec, scores, [valves.get(u) for u in matrix.use_ids], threshold)

    def _matrix(self, projection: CodeProjection) -> Matrix:
        """The feature matrix under ``projection``, built once per projection: a build asks for
        it twice, for the category statistics and the stand-in counts (the newest only is kept,
        with its projection so that the key is not a recycled id)."""
        key = id(projection)
        if key not in self._matrices:
            self._matrices = {key: (projection, self._build_matrix(projection))}
        return self._matrices[key][1]

    def _build_matrix(self, projection: CodeProjection) -> Matrix:
        tfs = {
            e.event_id: self.features.get(e.event_id)
            or transient_features(e.samples, e.sample_rate_hz)
            for e in self.events
        }
        lines = {e.event_id: e.line for e in self.events}
        return build_matrix(
            self.spec,
            self._sorted_uses(),
            tfs,
            lines,
            self._event_codes(projection.codebook),
            projection,
        )

    def accuracy_counts(self, weeks: Sequence[int] = (2, 3, 4)) -> list[AccuracyCount]:
        """Effective (successes, trials) of the IPW estimate at each level at each week's end."""
        self._check_shared()
        out = []
        for week in weeks:
            end = self.installed_at + timedelta(days=7 * week)
            scored = [
                r.scored
                for r in self.labels
                if r.source == "active" and r.scored is not None and r.at < end
            ]
            for level in LEVELS:
                est = estimate_accuracy(scored, level, method="ipw")
                if est.n_effective > 0:
                    n = est.n_effective
                    out.append(AccuracyCount(level, week, min(n, est.point * n), n))
        return out

    def _sorted_uses(self) -> list[WaterUse]:
        return sorted(self.uses, key=lambda u: (u.t, u.use_id))

    def _label_categories(self) -> dict[str, str]:
        h = self.spec.hierarchy
        out = {}
        for r in self.labels:
            if r.level == "valve":
                out[r.use_id] = h.label_at(r.label, "category")
            elif r.level == "fixture":
                out[r.use_id] = str(h.category_of_fixture[r.label])
            else:
                out[r.use_id] = r.label
        return out
