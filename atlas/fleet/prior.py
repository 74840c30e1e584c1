"""The fleet as a new home receives it (:class:`FleetPrior`), and how it is built from homes.

WHY one frozen object: the engine takes it as one optional argument
(``CalibrationEngine(..., fleet=prior)``) and uses it at four explicit points, so the per-home
pipeline stays exactly as it is without a fleet:

1. ``projection``: the fleet codebook + PCA, so codes exist from day 1;
2. :meth:`FleetPrior.adjust_features`: the fleet category model's posterior multiplies the
   rule-evidence columns of the home's feature matrix (virtual evidence at category level),
   tempered by ``tau / (tau + n_labels)`` so the home's own labels take over as they arrive;
3. :meth:`FleetPrior.accuracy_prior`: a prior per level for the estimates (a Beta mixture: the
   population of the fleet's homes, :func:`atlas.fleet.fit_population`);
4. :meth:`FleetPrior.stand_in_scores` / :meth:`FleetPrior.stand_in_targets`: stand-in
   examples for the valves whose (category, lines) the fleet measured it can pick reliably,
   and :meth:`FleetPrior.checklist`, the guided checklist without the items they cover
   (:mod:`atlas.fleet.standin`).

It holds only parameters and aggregates (tested: no event, use, label or id of a use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from atlas.checklist import ChecklistItem
from atlas.day_one import layout_key
from atlas.engine.featurize import CodeProjection, Matrix
from atlas.estimate import BetaMixturePrior
from atlas.features import EVIDENCE_COLUMNS
from atlas.fleet.accuracy import FleetAccuracyPrior
from atlas.fleet.category import CategoryStats, FleetCategoryModel, category_likelihood
from atlas.fleet.codebook import codebook_from_atoms, fleet_atoms, fleet_projection
from atlas.fleet.home import LocalHome
from atlas.fleet.standin import (
    StandinTrust,
    fleet_checklist,
    stand_in_targets,
    standin_scores,
)
from atlas.homespec import HomeSpec

#: Settings of the engine's own codebook (CalibrationEngine.fit_codebook).
CODEBOOK_PARAMS: Mapping = {"n_atoms": 16, "physical_features": False}
#: Format of :meth:`FleetPrior.to_dict`; a stored fleet of another format is refused.
FLEET_FORMAT = "atlas.fleet/1"


@dataclass(frozen=True)
class FleetConfig:
    """How the fleet is built and how strongly a new home leans on it.

    Parameters
    ----------
    use_codebook, use_category, use_accuracy : bool, default=True
        Switch each of the three transfers (for ablations and the benchmark).
    n_atoms : int, default=16
    n_code_dims : int, default=12
        As the engine's own codebook and projection (EngineConfig).
    tau : float, default=30
        Labels at which the fleet evidence's exponent has halved: ``w = tau / (tau + n)``.
    floor : float, default=0.05
        Smallest likelihood the fleet gives a category (as the rules' floor).
    unseen : float, default=0.5
        Likelihood of a home category no contributing home had (no information, mild).
    min_count : int, default=3
        A home shares a category's statistics only with this many labels of it.
    min_homes : int, default=3
        Homes needed before an accuracy prior is given at a (level, week).
    use_standins : bool, default=True
        Stand-in examples and the shortened checklist (:mod:`atlas.fleet.standin`).
    standin_threshold : float, default=0.5
        Smallest score of a pick (more likely than not).
    standin_k : int, default=3
        Stand-ins per valve that has no label of its own.
    standin_min_precision, standin_confidence, standin_min_homes : default 0.8, 0.8, 3
        A (category, lines) key is trusted when the fleet homes' picks were right at least
        this often with this confidence, from this many homes (:class:`StandinTrust`).
    accuracy_discrepancy_sd : float, default=0.05
        How far a new home's true accuracy may sit from what the fleet's homes measured
        (:func:`atlas.fleet.accuracy.fit_population`); as the day-one prior's discrepancy.
    accuracy_scope : {"layout", "all"}, default="layout"
        "layout": the accuracy prior pools only homes of the new home's layout class
        (:func:`atlas.fleet.accuracy.layout_key`; the prior is given only after
        :meth:`FleetPrior.for_home`); "all": every home (measured to over-promote across
        layouts, docs/fleet.md).
    random_state : int, default=0
    """

    use_codebook: bool = True
    use_category: bool = True
    use_accuracy: bool = True
    n_atoms: int = 16
    n_code_dims: int = 12
    tau: float = 30.0
    floor: float = 0.05
    unseen: float = 0.5
    min_count: int = 3
    min_homes: int = 3
    use_standins: bool = True
    standin_threshold: float = 0.5
    standin_k: int = 3
    standin_min_precision: float = 0.8
    standin_confidence: float = 0.8
    standin_min_homes: int = 3
    accuracy_discrepancy_sd: float = 0.05
    accuracy_scope: str = "layout"
    random_state: int = 0

    @property
    def codebook_params(self) -> dict[str, Any]:
        """The parameters each home fits its own codebook with, to share its atoms."""
        return {**CODEBOOK_PARAMS, "n_atoms": self.n_atoms}

    def __post_init__(self) -> None:
        if self.tau <= 0:
            raise ValueError(f"tau={self.tau!r} should be > 0.")
        if self.accuracy_scope not in ("layout", "all"):
            raise ValueError(f"accuracy_scope={self.accuracy_scope!r} should be 'layout' or 'all'.")
        if not 0 < self.standin_threshold <= 1 or self.standin_k < 1:
            raise ValueError(
                f"standin_threshold={self.standin_threshold!r} should be in (0, 1] and "
                f"standin_k={self.standin_k!r} >= 1."
            )
        if not 0 < self.floor <= 1 or not 0 < self.unseen <= 1:
            raise ValueError(
                f"floor={self.floor!r} and unseen={self.unseen!r} should be in (0, 1]."
            )


@dataclass(frozen=True)
class FleetPrior:
    """What a new home gets from the fleet (see the module docstring).

    Attributes
    ----------
    n_homes : int
        Homes that contributed (opted-out homes are never counted).
    projection : CodeProjection or None
    category_model : FleetCategoryModel or None
    accuracy : FleetAccuracyPrior or None
    config : FleetConfig
    layout : str or None
        The receiving home's layout class (set by :meth:`for_home`).
    standin : StandinTrust or None
        Which (category, lines) keys the fleet's stand-in picks are trusted for.
    """

    n_homes: int
    projection: CodeProjection | None
    category_model: FleetCategoryModel | None
    accuracy: FleetAccuracyPrior | None
    config: FleetConfig
    layout: str | None = None
    standin: StandinTrust | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fleet as plain JSON types and numpy arrays, for storage (:meth:`from_dict`).

        Exactly what the fleet holds: aggregates and parameters, no home's id or record. The
        receiving home's ``layout`` is not part of it (:meth:`for_home` sets it).
        """
        return {
            "format": FLEET_FORMAT,
            "n_homes": self.n_homes,
            "config": asdict(self.config),
            "projection": None if self.projection is None else self.projection.to_dict(),
            "category_model": (
                None if self.category_model is None else self.category_model.to_dict()
            ),
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "standin": None if self.standin is None else self.standin.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FleetPrior:
        """The fleet :meth:`to_dict` described (ValueError for another format)."""
        if d.get("format") != FLEET_FORMAT:
            raise ValueError(f"fleet format={d.get('format')!r}; expected {FLEET_FORMAT!r}.")
        parts = {
            "projection": CodeProjection.from_dict,
            "category_model": FleetCategoryModel.from_dict,
            "accuracy": FleetAccuracyPrior.from_dict,
            "standin": StandinTrust.from_dict,
        }
        return cls(
            int(d["n_homes"]),
            config=FleetConfig(**d["config"]),
            **{name: None if d[name] is None else read(d[name]) for name, read in parts.items()},
        )

    def for_home(self, spec: HomeSpec) -> FleetPrior:
        """This prior, addressed to ``spec``'s home (its layout class picks the accuracy prior)."""
        return replace(self, layout=layout_key(spec.hierarchy.category_of_fixture))

    def _codes_comparable(self, projection: CodeProjection | None) -> bool:
        if projection is None or self.projection is None:
            return False
        return projection.codebook.version_ == self.projection.codebook.version_ and np.array_equal(
            projection.components, self.projection.components
        )

    def category_likelihood(
        self, spec: HomeSpec, X: np.ndarray, projection: CodeProjection | None
    ) -> np.ndarray | None:
        """Fleet likelihood per use and :class:`Category` (enum order), in [floor, 1]; None: none.

        Code columns enter only when the home encodes with the fleet's projection; otherwise
        the model is marginalised to the other columns.
        """
        if self.category_model is None:
            return None
        return category_likelihood(
            self.category_model,
            [str(c) for c in spec.hierarchy.category_of_fixture.values()],
            X,
            0 if projection is None else projection.components.shape[0],
            codes_comparable=self._codes_comparable(projection),
            floor=self.config.floor,
            unseen=self.config.unseen,
        )

    def adjust_features(
        self,
        spec: HomeSpec,
        X: np.ndarray,
        *,
        projection: CodeProjection | None,
        n_labels: int,
    ) -> np.ndarray:
        """``X`` with the fleet's category likelihood, tempered by the home's label count,
        multiplied into the rule-evidence columns (a new array; ``X`` is not changed)."""
        if not self.config.use_category:
            return X
        like = self.category_likelihood(spec, X, projection)
        if like is None:
            return X
        w = self.config.tau / (self.config.tau + max(0, n_labels))
        out = np.array(X, dtype=float, copy=True)
        start, stop = EVIDENCE_COLUMNS
        out[:, start:stop] *= like**w
        return out

    @property
    def trust(self) -> StandinTrust | None:
        """What the fleet trusts its stand-ins for (None: stand-ins off)."""
        return self.standin if self.config.use_standins else None

    def checklist(self, spec: HomeSpec) -> list[ChecklistItem]:
        """The guided checklist a home with this fleet still asks for (:func:`fleet_checklist`)."""
        return fleet_checklist(spec, self.trust)

    def stand_in_scores(
        self, spec: HomeSpec, matrix: Matrix, projection: CodeProjection | None
    ) -> np.ndarray | None:
        """Stand-in scores per use and valve from the home's unadjusted ``matrix`` (None: off)."""
        trust = self.trust
        if trust is None or not any(trust.covers(spec, v) for v in spec.hierarchy.valve_ids):
            return None
        like = self.category_likelihood(spec, matrix.X, projection)
        if like is None:
            return None
        return standin_scores(spec, matrix.X, matrix.physics_columns, like)

    def stand_in_targets(
        self, spec: HomeSpec, scores: np.ndarray | None, y: np.ndarray
    ) -> np.ndarray:
        """Training targets ``y`` plus stand-ins for trusted valves without a label of their own."""
        if scores is None or self.trust is None:
            return y
        return stand_in_targets(
            spec,
            scores,
            y,
            self.trust,
            threshold=self.config.standin_threshold,
            k=self.config.standin_k,
        )

    def accuracy_prior(self, level: str, day: int) -> BetaMixturePrior | None:
        """The fleet's prior for a home on local ``day`` (None: not enough fleet)."""
        if not self.config.use_accuracy or self.accuracy is None:
            return None
        week = (day - 1) // 7 + 1
        if self.config.accuracy_scope == "all":
            return self.accuracy.prior(level, week)
        return None if self.layout is None else self.accuracy.prior(level, week, self.layout)

    @property
    def initial_projection(self) -> CodeProjection | None:
        """The projection a new home starts with (None: the engine's own codebook at day 7)."""
        return self.projection if self.config.use_codebook else None


def build_fleet(homes: Sequence[LocalHome], config: FleetConfig | None = None) -> FleetPrior:
    """Build the fleet from the homes that did not opt out (only their aggregates are read).

    Phases (each a call *into* the homes): atoms -> fleet codebook; code moments -> PCA;
    category statistics under that projection -> category model; accuracy counts -> priors.
    """
    config = config or FleetConfig()
    shared = [h for h in homes if not h.opt_out]
    if not shared:
        return FleetPrior(0, None, None, None, config)
    params = config.codebook_params
    atoms = fleet_atoms(
        [h.atoms(params, config.random_state) for h in shared], config.n_atoms, config.random_state
    )
    codebook = codebook_from_atoms(atoms, params)
    projection = fleet_projection(
        codebook, [h.code_moments(codebook) for h in shared], config.n_code_dims
    )
    by_home = [h.category_stats(projection, min_count=config.min_count) for h in shared]
    stats = [s for s in by_home if s.categories]
    category_model = _category_model(stats)
    standin = None
    if config.use_standins and category_model is not None:
        counts = []
        for i, home in enumerate(shared):
            # leave the home out: its count measures what a new home would get
            loo = _category_model([s for j, s in enumerate(by_home) if j != i and s.categories])
            if loo is not None:
                counts.append(
                    home.standin_counts(
                        loo,
                        projection,
                        threshold=config.standin_threshold,
                        floor=config.floor,
                        unseen=config.unseen,
                    )
                )
        standin = StandinTrust(
            counts,
            min_precision=config.standin_min_precision,
            confidence=config.standin_confidence,
            min_homes=config.standin_min_homes,
        )
    accuracy = FleetAccuracyPrior(
        {h.home_id: h.accuracy_counts() for h in shared},
        min_homes=config.min_homes,
        layouts={h.home_id: layout_key(h.spec.hierarchy.category_of_fixture) for h in shared},
        discrepancy_sd=config.accuracy_discrepancy_sd,
    )
    return FleetPrior(len(shared), projection, category_model, accuracy, config, standin=standin)


def _category_model(stats: Sequence[CategoryStats]) -> FleetCategoryModel | None:
    try:
        return FleetCategoryModel(stats) if stats else None
    except ValueError:
        return None  # too few labeled uses across these homes yet
