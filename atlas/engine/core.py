"""The per-home calibration engine: one object the benchmark and the live service both drive.

WHY one engine: the calibration protocol (guided week 1, label-request rounds, honest
estimates, display levels) is only trustworthy if the numbers the benchmark reports come from
the same code that runs in a home. The engine is pure: no I/O, no clock (every method takes
``now``), no threads. The service loads it from a snapshot, calls one method per scheduler job
or MQTT message, and saves the snapshot; the benchmark calls the same methods in simulated time.

Lifecycle of a home::

    engine = CalibrationEngine(spec, installed_at)
    engine.announce(announcement, now)                 # week 1: "I am about to run ..."
    engine.ingest(uses, events, now)                   # completed uses + their events
    if engine.codebook_due(now):                       # end of day 7, then weekly
        engine.fit_codebook(all_events, now)
    plan = engine.plan_round(now)                      # on round days, outside quiet hours
    engine.record_answer(request_id, choice, now)      # a valve, a fixture, "not sure" or None
    engine.daily_update(now)                           # estimates -> display level
    state, mark = engine.snapshot(), engine.snapshot_mark()   # a full snapshot ...
    delta = engine.snapshot(since=mark)                       # ... and what came after it
    CalibrationEngine.restore(spec, state, deltas=[delta])

Decisions (docs/benchmarks.md):

* A round is drawn as one batch (one uniform audit item per round needs a batch), at the call
  time, from the uses of the last ``TimetablePolicy.memory_h`` hours. The benchmark calls it at
  the day's last timetable slot, so the pool covers the day.
* A label is scored against the prediction of the model in force when the answer arrives
  (always a pre-answer model: the answer is learned from only after scoring).
* Only labels drawn by :func:`atlas.sampling.draw_batch` ("active", audit items included)
  enter the estimates; guided week-1 labels train the model but are no probability sample.
* A fixture answer ("kitchen sink", when the valve was not among the choices) scores the
  fixture and category levels and trains the most probable valve of that fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from atlas.checklist import Announcement
from atlas.classifier import HierarchicalClassifier
from atlas.day_one import DayOnePriors, layout_key, load_day_one_priors
from atlas.domain import LEVELS
from atlas.engine.announcements import PendingAnnouncements
from atlas.engine.config import CODEBOOK_MODES, EngineConfig
from atlas.engine.display import DisplayState
from atlas.engine.featurize import CodeProjection, fit_projection
from atlas.engine.predictions import Predictions
from atlas.engine.preview import CONTEXT as PREVIEW_CONTEXT
from atlas.engine.preview import PreviewModel, display_label
from atlas.engine.records import (
    LabelRecord,
    LabelRequest,
    RoundPlan,
    UseClassification,
    features_from_dict,
    features_to_dict,
    label_from_dict,
    label_to_dict,
    use_from_dict,
    use_to_dict,
)
from atlas.engine.requests import RequestBook
from atlas.engine.rows import FeatureRows
from atlas.engine.uselog import UseLog
from atlas.estimate import (
    AccuracyEstimate,
    Prior,
    ScoredLabel,
    estimate_accuracy,
    truth_at_levels,
)
from atlas.events import Event
from atlas.homespec import HomeSpec
from atlas.levels import (
    LevelDecision,
    confusion_from_probabilities,
    decide_level,
    lump_fixtures,
)
from atlas.sampling import draw_batch
from atlas.strategies import QueryStrategy, answerable, make_strategy
from atlas.strategies.diversity import DiversitySampling
from atlas.timetable import (
    day_number,
    is_quiet,
    is_round_day,
    plan_day,
    request_count,
    request_expiry,
)
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from codebook import Codebook

if TYPE_CHECKING:  # atlas.fleet imports atlas.engine.featurize
    from atlas.fleet import FleetPrior

#: The "not sure" choice offered with every request (same text as the simulated homeowner's).
NOT_SURE = "not sure"

SNAPSHOT_FORMAT = "atlas.engine/1"
DELTA_FORMAT = "atlas.engine.delta/1"


@dataclass(frozen=True)
class SnapshotMark:
    """How far the use log stood when a snapshot was taken (see ``CalibrationEngine.snapshot``)."""

    uses: int  # use additions (a re-paired use counts again)
    events: int
    codebook_at: str | None


@dataclass(frozen=True)
class DailyReport:
    """One daily update: the estimates per level and the display decision with its reason."""

    day: int
    estimates: dict[str, AccuracyEstimate]
    decision: LevelDecision
    model_version: int
    n_labels: dict[str, int]
    lumps: tuple[tuple[str, ...], ...] = ()  # fixture ids shown together at the fixture level


StrategyFactory = Callable[[int], QueryStrategy]


class CalibrationEngine:
    """Per-home calibration state and the operations of the protocol (see the module docstring).

    Parameters
    ----------
    spec : HomeSpec
    installed_at : datetime
        Timezone-aware installation time (day 1 is its local date).
    config : EngineConfig, default=EngineConfig()
    strategy_factory : callable or None, default=None
        ``seed -> QueryStrategy`` for a strategy outside :data:`atlas.strategies.STRATEGIES`
        (the benchmark's outside reference); None builds ``config.strategy``.
    fleet : atlas.fleet.FleetPrior or None, default=None
        What earlier homes taught (docs/fleet.md): its codebook from day 1, its category
        evidence in the feature matrix, stand-in training examples for valves it can pick
        reliably, its accuracy prior (a Beta mixture) in the estimates. None: the home alone,
        exactly as without the fleet.
    day_one : atlas.day_one.DayOnePriors or None, default=None
        The day-one prior table (used when ``config.day_one_prior`` is set); None: the table
        shipped with Atlas.
    """

    def __init__(
        self,
        spec: HomeSpec,
        installed_at: datetime,
        config: EngineConfig | None = None,
        *,
        strategy_factory: StrategyFactory | None = None,
        fleet: FleetPrior | None = None,
        day_one: DayOnePriors | None = None,
    ) -> None:
        if installed_at.tzinfo is None or installed_at.utcoffset() is None:
            raise ValueError(f"installed_at={installed_at!r} should be timezone-aware.")
        self.spec = spec
        self.installed_at = installed_at
        self.config = config or EngineConfig()
        self.strategy_factory = strategy_factory
        self.fleet = fleet
        self.day_one = day_one
        self.layout = layout_key(spec.hierarchy.category_of_fixture)
        self.tz = ZoneInfo(spec.model.timezone)
        self.log = UseLog()
        self._projection: CodeProjection | None = (
            None if fleet is None else fleet.initial_projection
        )
        self._codebook_at: datetime | None = None
        self._labels: dict[str, LabelRecord] = {}
        self._requests = RequestBook()
        self._announcements = PendingAnnouncements(
            self.config.announcement_window_s, self.config.announcement_grace_s
        )
        self._model_version = 0
        self._display = DisplayState()
        self._stale_model = False
        self._trained_on: frozenset[str] = frozenset()  # labels the current model has seen
        # caches, rebuilt on demand (not part of the snapshot)
        self._rows = FeatureRows(spec)
        self._fleet_X: np.ndarray | None = None  # the rows with the fleet's evidence, if any
        self._stand_in_scores: np.ndarray | None = None  # fleet stand-ins (with the rows)
        self._clf: HierarchicalClassifier | None = None
        self._pred = Predictions()

    # ------------------------------------------------------------------ read-only views

    @property
    def model_version(self) -> int:
        return self._model_version

    @property
    def rows(self) -> FeatureRows:
        """The feature rows of every use, in time order (the classifier's input before any
        fleet adjustment; built when first needed)."""
        return self._ensure_rows()

    @property
    def classifier(self) -> HierarchicalClassifier | None:
        """The fitted classifier in force (None before the first valve-trainable label)."""
        self._ensure_predictions()
        return self._clf

    @property
    def projection(self) -> CodeProjection | None:
        """The codebook and its PCA the code columns come from (None before the codebook)."""
        return self._projection

    @property
    def lumps(self) -> tuple[tuple[str, ...], ...]:
        """Fixture ids shown as one at the fixture level (decided at the last daily update)."""
        return self._display.lumps

    @property
    def level(self) -> str:
        return self._display.level

    @property
    def labels(self) -> tuple[LabelRecord, ...]:
        return tuple(self._labels.values())

    @property
    def requests(self) -> tuple[LabelRequest, ...]:
        return self._requests.all()

    @property
    def history(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._display.history)

    @property
    def n_transients(self) -> int:
        return len(self.log.features)

    def day(self, now: datetime) -> int:
        return day_number(now, self.installed_at, self.tz)

    def scored_labels(self, sources: Iterable[str] = ("active",)) -> list[ScoredLabel]:
        wanted = set(sources)
        return [
            r.scored for r in self._labels.values() if r.source in wanted and r.scored is not None
        ]

    # ------------------------------------------------------------------ intake

    def ingest(
        self,
        uses: Sequence[WaterUse],
        events: Sequence[Event],
        now: datetime,
        *,
        features: Mapping[str, TransientFeatures] | None = None,
    ) -> list[UseClassification]:
        """Add completed uses and their events; classify the new uses at every level.

        ``events`` must include every event of ``uses`` not ingested before (their waveforms
        give the transient features and, once the codebook exists, the codes); ``features``
        (e.g. :attr:`atlas.pairing.PairingResult.features`) avoids recomputing them. A use id
        seen before replaces the earlier use (re-pairing is idempotent by id). Pending
        announcements are matched against the new uses.
        """
        log = self.log
        new_events = log.add_events(events, features)
        if self._projection is not None and new_events:
            codes = self._projection.codebook.transform([e.samples for e in new_events])
            for e, c in zip(new_events, codes, strict=True):
                log.codes[e.event_id] = c.astype(np.float32)
        for use in uses:
            missing = [eid for eid in use.event_ids if eid not in log.features]
            if missing:
                raise ValueError(f"use {use.use_id!r} has events {missing} not given in events.")
        if not uses:
            return []
        uses = list({u.use_id: u for u in uses}.values())  # a repeated id: the last one wins
        changes = [(log.add_use(use), use) for use in uses]
        if self._rows.built:
            changed = self._rows.update(log, self._projection, changes)
            if self.fleet is not None:
                self._adjust_for_fleet()
            elif self._pred.valid and self._clf is not None:
                self._pred.refresh_rows(self._clf, self._rows.X, changed)
        self._match_announcements(now)
        self._ensure_predictions()
        return self.classify([u.use_id for u in uses])

    def announce(self, announcement: Announcement, now: datetime) -> None:
        """Remember "I am about to use ...": the first matching use becomes a label.

        Nothing is dropped here: ``now`` (when it was said) runs ahead of the ingested uses,
        which arrive only once complete, so an earlier announcement whose use is not ingested
        yet must survive a later one (the demo lost 9 of 16 that way). Old announcements are
        dropped at ingest, against the ingested uses.
        """
        del now  # part of the call signature; matching and dropping go by ingested uses
        self.spec.fixture(announcement.fixture_id)  # raises on an unknown fixture
        self._announcements.add(announcement)

    def _match_announcements(self, now: datetime) -> None:
        matched = self._announcements.match(self.spec, self.log, self._asked(), now)
        for found, at in matched:
            self._add_guided(found.use_id, found.valve_id, at)

    def _add_guided(self, use_id: str, valve_id: str, at: datetime) -> None:
        self._ensure_predictions()
        scored = ScoredLabel(
            use_id,
            "valve",
            self._predicted(use_id),
            truth_at_levels(self.spec.hierarchy, valve_id, "valve"),
            self._model_version,
            1.0,
            False,
        )
        self._labels[use_id] = LabelRecord(
            use_id, valve_id, "valve", "guided", at, valve_id, None, scored
        )
        self._stale_model = True

    def add_guided_label(self, use_id: str, valve_id: str, now: datetime) -> LabelRecord:
        """A guided label given directly (e.g. the installer labels a use on the dashboard)."""
        if use_id not in self.log:
            raise KeyError(f"use_id={use_id!r} has not been ingested.")
        if valve_id not in self.spec.hierarchy.valve_ids:
            raise ValueError(f"valve_id={valve_id!r} is not a valve of home {self.spec.home_id}.")
        self._add_guided(use_id, valve_id, now)
        return self._labels[use_id]

    # ------------------------------------------------------------------ codebook and model

    def codebook_due(self, now: datetime) -> bool:
        """Whether :meth:`fit_codebook` should run now (end of ``codebook_day``, then weekly)."""
        cfg = self.config
        if self._codebook_at is None:
            by_count = (
                cfg.codebook_min_transients is not None
                and len(self.log.features) >= cfg.codebook_min_transients
            )
            return by_count or self.day(now) > cfg.codebook_day
        if cfg.codebook_refit_days is None:
            return False
        return now - self._codebook_at >= timedelta(days=cfg.codebook_refit_days)

    def fit_codebook(self, events: Sequence[Event], now: datetime) -> str:
        """Fit the codebook on ``events`` (pass every event of the home), re-encode, retrain.

        Returns the codebook's content version. Codes of events not passed are dropped (codes
        of different codebooks do not mix); they count as zero codes.
        """
        if not events:
            raise ValueError("events is empty; the codebook needs waveforms to learn from.")
        cb = Codebook(
            n_atoms=self.config.n_atoms,
            physical_features=False,
            random_state=self.config.random_state,
            **CODEBOOK_MODES[self.config.codebook_mode],
        )
        samples = [e.samples for e in events]
        cb.fit(samples)
        codes = cb.transform(samples)
        self.log.codes = {
            e.event_id: c.astype(np.float32) for e, c in zip(events, codes, strict=True)
        }
        self._projection = fit_projection(
            cb, self.log.sorted, self.log.codes, self.config.n_code_dims, self.config.random_state
        )
        self._codebook_at = now
        self._invalidate_rows()
        self.retrain(now)
        return cb.version_

    def use_fleet(self, fleet: FleetPrior | None) -> None:
        """Use ``fleet`` from now on (e.g. a newer fleet version; None: the home alone).

        Its category evidence and stand-ins enter the rows and the model when they are next
        built (the rows now; the model at the next retrain, round or daily update). The codes
        keep coming from the current projection, so take a new fleet right before
        :meth:`fit_codebook`, which re-encodes and refits everything anyway.
        """
        self.fleet = fleet
        self._invalidate_rows()
        self._stale_model = True

    def retrain(self, now: datetime) -> int:
        """Refit the classifier on all uses and labels; returns the new model version.

        Without any valve-trainable label there is no model (version stays 0).
        """
        del now  # part of the call signature for the service's job log; training is timeless
        self._fit_model(bump=True)
        return self._model_version

    def _fit_model(self, *, bump: bool, only: frozenset[str] | None = None) -> None:
        """Fit on every label (``only``: on those labels only, to rebuild a restored model)."""
        X = self._X()
        y = self._y(only)
        if self.fleet is not None:  # stand-ins train, they are never scored labels
            y = self.fleet.stand_in_targets(self.spec, self._stand_in_scores, y)
        if only is None:
            self._stale_model = False
        self._trained_on = (
            frozenset(uid for uid, r in self._labels.items() if r.train_valve is not None)
            if only is None
            else only
        )
        if not any(v is not None for v in y):
            self._clf = None
            self._pred.clear()
            return
        clf = HierarchicalClassifier.for_home(
            self.spec,
            random_state=self.config.random_state,
            physics_columns=self._rows.physics_columns,
        )
        self._clf = clf.fit(X, y)
        if bump:
            self._model_version += 1
        self._pred.refresh(self._clf, self._rows, X)

    def _y(self, only: frozenset[str] | None = None) -> np.ndarray:
        self._ensure_rows()
        y = np.full(len(self._rows.use_ids), None, dtype=object)
        for use_id, rec in self._labels.items():
            if only is not None and use_id not in only:
                continue
            if rec.train_valve is not None and use_id in self._rows:
                y[self._rows.row(use_id)] = rec.train_valve
        return y

    def _invalidate_rows(self) -> None:
        """Forget the rows (the codebook changed): they are rebuilt when next needed."""
        self._rows = FeatureRows(self.spec)
        self._pred.clear()

    def _ensure_rows(self) -> FeatureRows:
        if not self._rows.built:
            self._rows.rebuild(self.log, self._projection)
            self._pred.clear()
            if self.fleet is not None:
                self._adjust_for_fleet()
        return self._rows

    def _adjust_for_fleet(self) -> None:
        """The fleet's evidence and stand-in scores over every row (after the rows changed)."""
        assert self.fleet is not None
        # stand-in scores read the rule evidence before the fleet multiplies into it
        self._stand_in_scores = self.fleet.stand_in_scores(
            self.spec, self._rows.matrix(), self._projection
        )
        self._fleet_X = self.fleet.adjust_features(
            self.spec, self._rows.X, projection=self._projection, n_labels=len(self._labels)
        )
        self._pred.clear()
        if self._stand_in_scores is not None:
            # new uses may hold better stand-ins (or the first, before any label):
            # refit at the next round or daily update
            self._stale_model = True

    def _X(self) -> np.ndarray:
        """The classifier's input: the rows, with the fleet's evidence when there is a fleet."""
        self._ensure_rows()
        return self._rows.X if self.fleet is None else self._fleet_X

    def _ensure_predictions(self) -> None:
        """Predictions of the current model for every use (refit if the layout changed)."""
        X = self._X()
        if self._clf is None:
            if self._model_version > 0:  # restored from a snapshot: refit the same model
                self._fit_model(bump=False, only=self._trained_on)
            return
        if self._clf.n_features_in_ != X.shape[1]:
            self._fit_model(bump=True)
        elif not self._pred.valid:
            self._pred.refresh(self._clf, self._rows, X)

    def _predicted(self, use_id: str) -> dict[str, str]:
        if not self._pred.valid or use_id not in self._rows:
            return {}
        return self._pred.predicted(self._rows.row(use_id))

    # ------------------------------------------------------------------ classification

    def classify(self, use_ids: Sequence[str] | None = None) -> list[UseClassification]:
        """Classifications of ``use_ids`` (default: every use) with the current model."""
        self._ensure_predictions()
        rows = self._rows
        ids = list(rows.use_ids) if use_ids is None else list(use_ids)
        level = self._display.level
        out = []
        for uid in ids:
            if uid not in rows:
                raise KeyError(f"use_id={uid!r} has not been ingested.")
            row = rows.row(uid)
            rule = rows.rule_category[row]
            predicted = self._predicted(uid)
            confidence = self._pred.confidence(row) if self._pred.valid else {}
            display = display_label(level, rule, predicted, self._display.lumps)
            out.append(
                UseClassification(
                    uid, self._model_version, predicted, confidence, rule, level, display
                )
            )
        return out

    def preview_model(self) -> PreviewModel:
        """A frozen copy for classifying uses before they are ingested (:mod:`.preview`)."""
        self._ensure_predictions()
        newest = self.log.newest_start
        context = () if newest is None else tuple(self.log.since(newest - PREVIEW_CONTEXT))
        ids = {eid for u in context for eid in u.event_ids}
        return PreviewModel(
            spec=self.spec,
            level=self._display.level,
            lumps=self._display.lumps,
            model_version=self._model_version,
            clf=self._clf,
            projection=self._projection,
            fleet=self.fleet,
            n_labels=len(self._labels),
            context=context,
            features={e: self.log.features[e] for e in ids},
            lines={e: self.log.lines[e] for e in ids},
            codes={e: self.log.codes[e] for e in ids if e in self.log.codes},
        )

    def predictions(self, level: str) -> dict[str, str]:
        """``use_id -> predicted label`` at ``level`` for every use (empty without a model)."""
        if level not in LEVELS:
            raise ValueError(f"level={level!r} should be one of {LEVELS}.")
        self._ensure_predictions()
        if not self._pred.valid:
            return {}
        labels = self._pred.labels(level)
        return {uid: str(labels[i]) for i, uid in enumerate(self._rows.use_ids)}

    # ------------------------------------------------------------------ label requests

    def _asked(self) -> set[str]:
        return set(self._labels) | self._requests.use_ids()

    def round_time(self, now: datetime) -> datetime | None:
        """The day's last timetable slot on a round day (when to call :meth:`plan_round`)."""
        plan = plan_day(now, self.installed_at, self.tz, self.level, self.config.timetable)
        return plan.times[-1] if plan.times else None

    def _strategy(self, day: int) -> QueryStrategy:
        seed = (self.config.random_state * 1009 + day) % (2**31)
        if self.strategy_factory is not None:
            return self.strategy_factory(seed)
        return make_strategy(
            self.config.strategy, random_state=seed, **dict(self.config.strategy_params)
        )

    def plan_round(self, now: datetime, send_at: datetime | None = None) -> RoundPlan:
        """Draw the label requests of today's round (idempotent per day; empty if none is due).

        Nothing is drawn in quiet hours or on days that are no round. Candidates are the
        answerable uses (:func:`atlas.strategies.answerable`: young enough to leave
        ``min_answer_h`` before expiry, paired, no overlap, never asked); the strategy
        scores them and :func:`atlas.sampling.draw_batch` draws the
        batch with one uniform audit item and logged inclusion probabilities.

        ``send_at``: when the requests can go out, if later than ``now``. A round that runs
        late (after downtime, or into quiet hours) is sent the next morning; its uses must
        still leave ``min_answer_h`` then, or the round asks about what has already expired.
        """
        policy = self.config.timetable
        day = self.day(now)
        drawn = self._requests.drawn(day)
        if drawn is not None:
            return RoundPlan(day, drawn, 0, f"day {day}: round already drawn")
        if not is_round_day(day, policy):
            return RoundPlan(day, (), 0, f"day {day} is not a label-request round")
        if is_quiet(now, self.tz, policy):
            return RoundPlan(day, (), 0, f"{now.isoformat()} is in quiet hours")
        if self._stale_model:
            self._fit_model(bump=True)
        X = self._X()
        self._ensure_predictions()
        uses = self.log.sorted
        late = max(timedelta(0), send_at - now) if send_at is not None else timedelta(0)
        max_age = timedelta(hours=policy.memory_h - self.config.min_answer_h) - late
        if max_age <= timedelta(0):
            self._requests.record_round(day, ())
            return RoundPlan(day, (), 0, f"day {day}: every use expires before {send_at}")
        cand = answerable(uses, now, asked=self._asked(), max_age=max_age)
        if cand.size == 0:
            self._requests.record_round(day, ())
            return RoundPlan(day, (), 0, f"day {day}: no answerable use")
        k = request_count(self.level, policy)
        y = self._y()
        strategy = self._strategy(day)
        if self._clf is None and not isinstance(strategy, DiversitySampling):
            strategy = DiversitySampling(random_state=strategy.random_state)  # no model yet
        scores = strategy.scores(X, y, self._clf, candidates=cand)
        rng = np.random.default_rng([self.config.random_state, day])
        batch = draw_batch(
            scores,
            k,
            rng,
            n_audit=self.config.n_audit,
            temperature=self.config.temperature,
            uniform_mix=self.config.uniform_mix,
        )
        drawn_now = []
        for slot, (pos, p, audit) in enumerate(
            zip(batch.indices, batch.inclusion_prob, batch.is_audit, strict=True)
        ):
            row = int(cand[pos])
            use = uses[row]
            rid = f"{self.spec.home_id}-d{day:03d}-{slot}"
            req = LabelRequest(
                rid,
                use.use_id,
                day,
                now,
                request_expiry(use.t, policy),
                self._choices(row),
                float(p),
                bool(audit),
                type(strategy).__name__,
                self._model_version,
                self._predicted(use.use_id),
            )
            drawn_now.append(req)
        reqs = self._requests.record_round(day, drawn_now)
        return RoundPlan(day, reqs, int(cand.size), f"day {day}: {len(reqs)} of {cand.size}")

    def _choices(self, row: int) -> tuple[str, ...]:
        """Most probable valves, then fixtures not fully listed (as "other"), then not sure."""
        h = self.spec.hierarchy
        proba = self._pred.proba
        if proba is None:
            valves = list(h.valve_ids[: self.config.n_choices])
        else:
            order = np.argsort(-proba[row], kind="stable")
            valves = [h.valve_ids[i] for i in order[: self.config.n_choices]]
        listed = set(valves)
        fixtures = [f.id for f in self.spec.fixtures if not all(v.id in listed for v in f.valves)]
        return (*valves, *fixtures, NOT_SURE)

    def record_answer(
        self, request_id: str, choice: str | None, now: datetime
    ) -> LabelRecord | None:
        """Record the homeowner's answer; returns the label (None: no label from it).

        ``choice`` is one of the request's choices, :data:`NOT_SURE`, or None (dismissed).
        Idempotent: a request answers once; later calls return the first outcome. An answer
        after the request's expiry is refused (the request expires instead): memory fades.
        """
        if request_id not in self._requests:
            raise KeyError(f"request_id={request_id!r} is not a request of this home.")
        req = self._requests[request_id]
        if req.state != "open":
            rec = self._labels.get(req.use_id)
            return rec if rec is not None and rec.request_id == request_id else None
        if choice is not None and choice not in req.choices:
            raise ValueError(
                f"choice={choice!r} is not one of request {request_id!r}'s choices {req.choices}."
            )
        if now > req.expires_at or choice is None:
            self._requests.close(request_id, "expired")
            return None
        if choice == NOT_SURE:
            self._requests.close(request_id, "not_sure", answer=choice, answered_at=now)
            return None
        self._ensure_predictions()
        level = self._answer_level(choice)
        scored = ScoredLabel(
            req.use_id,
            level,
            self._predicted(req.use_id),  # the current model has not seen this answer
            truth_at_levels(self.spec.hierarchy, choice, level),
            self._model_version,
            req.inclusion_prob,
            req.is_audit,
        )
        rec = LabelRecord(
            req.use_id,
            choice,
            level,
            "active",
            now,
            self._train_valve(req.use_id, choice, level),
            request_id,
            scored,
        )
        self._labels[req.use_id] = rec
        self._requests.close(request_id, "answered", answer=choice, answered_at=now)
        self._stale_model = True
        return rec

    def _answer_level(self, choice: str) -> str:
        h = self.spec.hierarchy
        if choice in h.valve_ids:
            return "valve"
        if choice in h.category_of_fixture:
            return "fixture"
        return "category"

    def _train_valve(self, use_id: str, choice: str, level: str) -> str | None:
        if level == "valve":
            return choice
        if level != "fixture":
            return None
        valves = [v.id for v in self.spec.fixture(choice).valves]
        proba = self._pred.proba
        if len(valves) == 1 or proba is None:
            return valves[0]
        p = proba[self._rows.row(use_id)]
        idx = {v: i for i, v in enumerate(self.spec.hierarchy.valve_ids)}
        return max(valves, key=lambda v: p[idx[v]])

    def expire_requests(self, now: datetime) -> list[str]:
        """Mark open requests past their expiry as expired; returns their ids."""
        return self._requests.expire_due(now)

    # ------------------------------------------------------------------ daily update

    def estimates(self, day: int | None = None) -> dict[str, AccuracyEstimate]:
        """Accuracy estimate with lower bound per level from the active (sampled) labels.

        With ``day``, the prior for that level and day is applied (:meth:`accuracy_prior`),
        unless the home's labels contradict it (``config.prior_check``).
        """
        labels = self.scored_labels()
        return {
            lv: estimate_accuracy(
                labels,
                lv,
                method=self.config.estimate_method,
                confidence=self.config.confidence,
                prior=None if day is None else self.accuracy_prior(lv, day),
                prior_check=self.config.prior_check,
            )
            for lv in LEVELS
        }

    def accuracy_prior(self, level: str, day: int) -> Prior | None:
        """The fleet's prior where it has one, else the day-one prior (if enabled), else None."""
        if self.fleet is not None:
            prior = self.fleet.accuracy_prior(level, day)
            if prior is not None:
                return prior
        if not self.config.day_one_prior:
            return None
        table = self.day_one if self.day_one is not None else load_day_one_priors()
        return table.prior(self.layout, level, day, self.config.day_one_discrepancy_sd)

    def daily_update(self, now: datetime) -> DailyReport:
        """Expire requests, retrain if labels arrived, estimate, and decide the display level."""
        self.expire_requests(now)
        if self._stale_model:
            self._fit_model(bump=True)
        day = self.day(now)
        estimates = self.estimates(day)
        decision = decide_level(
            estimates, self._display.level_state, day=day, policy=self.config.level_policy
        )
        lumps = self._confused_fixtures()
        n_labels = {
            src: sum(r.source == src for r in self._labels.values()) for src in ("guided", "active")
        }
        self._display.record(
            now,
            day,
            decision,
            lumps,
            estimates,
            model_version=self._model_version,
            n_labels=n_labels,
        )
        return DailyReport(day, estimates, decision, self._model_version, n_labels, lumps)

    def _confused_fixtures(self) -> tuple[tuple[str, ...], ...]:
        """Fixtures of one category the current model cannot tell apart (groups of two or more).

        The seed shows a "Lumped Fixture level": rather than guess which of two upstairs
        toilets ran, say "one of the two upstairs toilets". Decided with the display level from
        the model's own probabilities over every use (no labels needed), see
        :func:`atlas.levels.lump_fixtures`.
        """
        self._ensure_predictions()
        if self._clf is None or not self._rows.use_ids:
            return ()
        proba, names = self._clf.predict_level_proba(self._X(), "fixture")
        fixtures = [self.spec.fixture(name) for name in names]
        lumps = lump_fixtures(confusion_from_probabilities(proba), fixtures)
        return tuple(tuple(f.id for f in lump) for lump in lumps if len(lump) > 1)

    # ------------------------------------------------------------------ persistence

    def snapshot_mark(self) -> SnapshotMark:
        """Where the use log stands now: a later :meth:`snapshot` ``since`` it is a delta."""
        n_uses, n_events = self.log.mark
        at = None if self._codebook_at is None else self._codebook_at.isoformat()
        return SnapshotMark(n_uses, n_events, at)

    def snapshot(self, since: SnapshotMark | None = None) -> dict[str, Any]:
        """The engine's state as plain dicts, lists and numpy arrays (see :meth:`restore`).

        With ``since`` (a :meth:`snapshot_mark` of this engine's history): a delta holding the
        uses and events added after it and the rest of the state in full; restore is the full
        snapshot taken at the mark plus its deltas in order. WHY: the uses and their events
        are nearly all of a snapshot and only grow, so a full one per save cost bytes that
        grew with the home's age. A codebook refit after ``since`` re-encodes every event: no
        delta is possible then (ValueError; take a full snapshot).

        The classifier is not stored: it is refitted deterministically from the uses, labels
        and codebook on restore.
        """
        log = self.log
        if since is None:
            uses, event_ids = list(log.sorted), list(log.features)
            fmt = SNAPSHOT_FORMAT
        else:
            if since.codebook_at != self.snapshot_mark().codebook_at:
                raise ValueError("the codebook was refitted after the mark; take a full snapshot.")
            uses, event_ids = log.uses_since(since.uses), log.events_since(since.events)
            fmt = DELTA_FORMAT
        code_ids = sorted(e for e in event_ids if e in log.codes)
        state: dict[str, Any] = {
            "format": fmt,
            "home_id": self.spec.home_id,
            "installed_at": self.installed_at.isoformat(),
            "uses": [use_to_dict(u) for u in uses],
            "features": {eid: features_to_dict(log.features[eid]) for eid in event_ids},
            "lines": {eid: log.lines[eid] for eid in event_ids},
            "code_ids": code_ids,
            "codes": (
                np.stack([log.codes[e] for e in code_ids])
                if code_ids
                else np.zeros((0, 0), dtype=np.float32)
            ),
            "codebook_at": None if self._codebook_at is None else self._codebook_at.isoformat(),
            "labels": [label_to_dict(r) for r in self._labels.values()],
            **self._requests.to_dict(),
            "announcements": self._announcements.to_list(),
            "model_version": self._model_version,
            "trained_on": sorted(self._trained_on),
            "stale_model": self._stale_model,
            **self._display.to_dict(),
        }
        if since is None:
            state["projection"] = None if self._projection is None else self._projection.to_dict()
        return state

    @classmethod
    def restore(
        cls,
        spec: HomeSpec,
        state: Mapping[str, Any],
        config: EngineConfig | None = None,
        *,
        deltas: Sequence[Mapping[str, Any]] = (),
        strategy_factory: StrategyFactory | None = None,
        fleet: FleetPrior | None = None,
    ) -> CalibrationEngine:
        """Rebuild an engine from a full :meth:`snapshot` and the deltas taken since, in order
        (same spec and config as when they were taken)."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"state format={state.get('format')!r}; expected {SNAPSHOT_FORMAT!r}.")
        eng = cls(
            spec,
            datetime.fromisoformat(state["installed_at"]),
            config,
            strategy_factory=strategy_factory,
            fleet=fleet,
        )
        proj = state["projection"]
        eng._projection = None if proj is None else CodeProjection.from_dict(proj)
        for part in (state, *deltas):
            if part is not state and part.get("format") != DELTA_FORMAT:
                raise ValueError(f"delta format={part.get('format')!r}; expected {DELTA_FORMAT!r}.")
            if part["home_id"] != spec.home_id:
                raise ValueError(f"state is of home {part['home_id']!r}, spec of {spec.home_id!r}.")
            eng._load(part)
        return eng

    def _load(self, state: Mapping[str, Any]) -> None:
        """Add a snapshot's uses and events to the log; take the rest of its state whole."""
        at = state["codebook_at"]
        codebook_at = None if at is None else datetime.fromisoformat(at)
        if self.log.mark != (0, 0) and codebook_at != self._codebook_at:
            raise ValueError("a delta of another codebook than its base; the chain is broken.")
        self._codebook_at = codebook_at
        for d in state["uses"]:
            self.log.add_use(use_from_dict(d))
        for eid, d in state["features"].items():
            self.log.add_event(eid, features_from_dict(d), state["lines"][eid])
        codes = np.asarray(state["codes"], dtype=np.float32)
        self.log.codes.update((eid, codes[i]) for i, eid in enumerate(state["code_ids"]))
        self._labels = {}
        for d in state["labels"]:
            rec = label_from_dict(d)
            self._labels[rec.use_id] = rec
        self._requests = RequestBook()
        self._requests.load(state)
        self._announcements.load(state["announcements"])
        self._model_version = int(state["model_version"])
        self._trained_on = frozenset(state["trained_on"])
        self._stale_model = bool(state["stale_model"])
        self._display.load(state)
