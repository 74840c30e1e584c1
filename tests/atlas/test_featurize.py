"""The feature matrix of a few uses, computed alone, equals those rows of the whole matrix."""

from __future__ import annotations

import numpy as np

from atlas.context_prior import handwash_log_likelihood
from atlas.engine.featurize import build_matrix, use_rings
from atlas.pairing import pair_events
from atlas.physics_prior import ring_log_likelihood
from simulator.generate import generate_run
from simulator.presets import load_preset


def test_rows_whose_hand_wash_term_reads_later_uses_equal_the_full_matrix_rows():
    """A toilet's hand-wash term depends on the sink uses after it: the preview computes only a
    few rows, and those must still see their followers (two bathrooms: the term is not zero)."""
    spec = load_preset("two_bath_house")
    events = [s.event for s in generate_run(spec, days=3, seed=5)]
    pairing = pair_events(events)
    uses = pairing.uses
    lines = {e.event_id: e.line for e in events}
    args = (spec, uses, pairing.features, lines, {}, None)
    valves = [spec.valve(v) for v in spec.hierarchy.valve_ids]
    rings = ring_log_likelihood(use_rings(uses, pairing.features, lines), valves)
    followed = np.flatnonzero(handwash_log_likelihood(spec, uses, rings).any(axis=1))
    assert followed.size >= 10
    picked = [*followed[:: followed.size // 10].tolist(), 0, len(uses) - 1]
    full = build_matrix(*args)
    part = build_matrix(*args, rows=picked)
    assert part.use_ids == tuple(full.use_ids[i] for i in picked)
    np.testing.assert_array_equal(part.X, full.X[picked])
