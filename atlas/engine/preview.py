"""Provisional classification of a use the moment it is paired, before it is stored.

WHY: a use is stored only once no later event can change it (its last event's window plus a
guard, ~2 s after the close arrives, ``service.intake.pairing_step``), and storing it re-runs the
engine over the home's history (hundreds of ms on a month of data). A homeowner watching the
dashboard, or an automation reacting to "the washing machine finished", should not wait for
either. A :class:`PreviewModel` is a frozen copy of what the engine needs to classify one more
use (model, codebook, the last day of uses for the sequence context): it classifies new uses in
milliseconds, without the engine's lock and without changing the engine. The stored
classification follows; ``atlas bench latency`` measures how often the two agree.

What the preview cannot know, and so may change in the final classification: events that had
not arrived yet (a sink following a toilet within 30 s), and home-wide references computed over
more than the context window (the median toilet refill drop of the rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from atlas.classifier import HierarchicalClassifier, level_proba
from atlas.domain import LEVELS
from atlas.engine.featurize import CodeProjection, build_matrix
from atlas.engine.records import UseClassification
from atlas.events import Event
from atlas.homespec import HomeSpec
from atlas.levels import RULE_CONFIDENT, lump_id
from atlas.transient import TransientFeatures, transient_features
from atlas.uses import WaterUse

if TYPE_CHECKING:
    from atlas.fleet import FleetPrior

#: Uses this far before a new use are its context: the sequence features look back up to a day
#: (``atlas.features.MAX_GAP_S``), the appliance rules three hours.
CONTEXT = timedelta(days=1)


def display_label(
    level: str,
    rule: str | None,
    predicted: Mapping[str, str],
    lumps: Sequence[Sequence[str]],
) -> str | None:
    """What the homeowner is shown at display ``level`` (None: "water use", nothing certified).

    Week 1 shows only the rule categories the rules recognise reliably; the fixture level shows
    a fixture the model cannot tell from another as their lump.
    """
    if level == "rule_categories":
        return rule if rule is not None and rule in RULE_CONFIDENT else None
    shown = predicted.get(level)
    if level == "fixture" and shown is not None:
        for lump in lumps:
            if shown in lump:
                return lump_id(lump)
    return shown


def level_predictions(
    clf: HierarchicalClassifier, X: np.ndarray, valve_proba: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per level: the argmax label of each row and its probability.

    One ``predict_proba`` for all levels (``valve_proba``: that call's result, if made
    already): the levels are sums over the valves, and each call has a fixed cost that was
    most of a provisional classification's time.
    """
    valve_proba = clf.predict_proba(X) if valve_proba is None else valve_proba
    out = {}
    for level in LEVELS:
        proba, names = level_proba(valve_proba, clf.hierarchy, level)
        best = proba.argmax(axis=1)
        out[level] = (np.asarray(names, dtype=object)[best], proba[np.arange(len(best)), best])
    return out


@dataclass(frozen=True)
class ContextUpdate:
    """A preview model that differs from the previous one only in its context (new uses were
    ingested): the context's use ids in order, and the uses and per-event data not in the
    previous model. WHY: the engine changes its preview model after every stored pass, and the
    provisional process got the whole model each time: a trained two_bath_house model is 161 KB
    and 2.2 ms to pickle and unpickle, an update 3.7 KB and 0.27 ms (``atlas bench preview``)."""

    use_ids: tuple[str, ...]
    uses: tuple[WaterUse, ...]
    features: Mapping[str, TransientFeatures]
    lines: Mapping[str, str]
    codes: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PreviewModel:
    """What classifying one more use needs, frozen at the engine's last change (module doc)."""

    spec: HomeSpec
    level: str
    lumps: tuple[tuple[str, ...], ...]
    model_version: int
    clf: HierarchicalClassifier | None
    projection: CodeProjection | None
    fleet: FleetPrior | None
    n_labels: int
    context: tuple[WaterUse, ...]  # the last CONTEXT of ingested uses, by time
    features: Mapping[str, TransientFeatures]  # of the context's events
    lines: Mapping[str, str]
    codes: Mapping[str, np.ndarray]

    def context_update(self, newer: PreviewModel) -> ContextUpdate | None:
        """``newer`` as a :class:`ContextUpdate` of this model, or None when more than the
        context changed (model, codebook, level, labels: send ``newer`` whole).

        Both are the engine's own objects, so an unchanged part is the same object.
        """
        same = (
            newer.spec is self.spec
            and newer.clf is self.clf
            and newer.projection is self.projection
            and newer.fleet is self.fleet
            and (newer.model_version, newer.level, newer.lumps, newer.n_labels)
            == (self.model_version, self.level, self.lumps, self.n_labels)
        )
        if not same:
            return None
        mine = {u.use_id: u for u in self.context}
        added = tuple(u for u in newer.context if mine.get(u.use_id) is not u)
        events = [e for u in added for e in u.event_ids]
        return ContextUpdate(
            tuple(u.use_id for u in newer.context),
            added,
            {e: newer.features[e] for e in events},
            {e: newer.lines[e] for e in events},
            {e: newer.codes[e] for e in events if e in newer.codes},
        )

    def with_context(self, update: ContextUpdate) -> PreviewModel:
        """This model with the context of ``update`` (equal to the model it was made from)."""
        known = {u.use_id: u for u in self.context} | {u.use_id: u for u in update.uses}
        context = tuple(known[i] for i in update.use_ids)
        events = [e for u in context for e in u.event_ids]
        features = {**self.features, **update.features}
        lines = {**self.lines, **update.lines}
        codes = {**self.codes, **update.codes}
        return replace(
            self,
            context=context,
            features={e: features[e] for e in events},
            lines={e: lines[e] for e in events},
            codes={e: codes[e] for e in events if e in codes},
        )

    def classify(
        self,
        uses: Sequence[WaterUse],
        events: Sequence[Event],
        features: Mapping[str, TransientFeatures] | None = None,
    ) -> list[UseClassification]:
        """Classify ``uses`` (not ingested; ``events`` hold their events) as the engine would
        if they were ingested now; ``features`` avoids recomputing the transient features."""
        if not uses:
            return []
        known = features or {}
        feats = dict(self.features)
        lines = dict(self.lines)
        for e in events:
            feats[e.event_id] = known.get(e.event_id) or transient_features(
                e.samples, e.sample_rate_hz
            )
            lines[e.event_id] = e.line
        codes = dict(self.codes)
        if self.projection is not None and events:
            encoded = self.projection.codebook.transform([e.samples for e in events])
            for e, c in zip(events, encoded, strict=True):
                codes[e.event_id] = c.astype(np.float32)
        new_ids = {u.use_id for u in uses}
        ordered = sorted(
            [u for u in self.context if u.use_id not in new_ids] + list(uses),
            key=lambda u: (u.t, u.use_id),
        )
        position = {u.use_id: i for i, u in enumerate(ordered)}
        matrix = build_matrix(  # the new uses' rows only (row i is uses[i])
            self.spec,
            ordered,
            feats,
            lines,
            codes,
            self.projection,
            rows=[position[u.use_id] for u in uses],
        )
        X = matrix.X
        if self.fleet is not None:
            X = self.fleet.adjust_features(
                self.spec, X, projection=self.projection, n_labels=self.n_labels
            )
        preds = {} if self.clf is None else level_predictions(self.clf, X)
        out = []
        for i, use in enumerate(uses):
            rule = matrix.rule_category[i]
            predicted = {lv: str(preds[lv][0][i]) for lv in preds}
            confidence = {lv: float(preds[lv][1][i]) for lv in preds}
            out.append(
                UseClassification(
                    use.use_id,
                    self.model_version,
                    predicted,
                    confidence,
                    rule,
                    self.level,
                    display_label(self.level, rule, predicted, self.lumps),
                )
            )
        return out
