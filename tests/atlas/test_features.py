"""atlas.features: column layout, lines, durations, time of day, sequence context, codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atlas.domain import Category
from atlas.events import Event
from atlas.features import (
    EVIDENCE_COLUMNS,
    LINE_COLUMNS,
    feature_names,
    rule_evidence,
    transient_table,
    use_codes,
    use_features,
)
from atlas.transient import FEATURE_NAMES
from atlas.uses import UseStatus, WaterUse

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def use(uid, lines, start_s, dur_s=10.0, opens=(), closes=(), status=UseStatus.PAIRED):
    t_open = T0 + timedelta(seconds=start_s)
    return WaterUse(
        uid,
        "h1",
        tuple(lines),
        t_open,
        t_open + timedelta(seconds=dur_s) if dur_s is not None else None,
        status,
        tuple(opens),
        tuple(closes),
        {line: 5.0 for line in lines},
    )


def col(name):
    return feature_names().index(name)


def test_layout_constants_match_names():
    names = feature_names(3)
    assert names[LINE_COLUMNS[0]] == "line_hot" and names[LINE_COLUMNS[1]] == "line_cold"
    assert names[EVIDENCE_COLUMNS[0] : EVIDENCE_COLUMNS[1]] == tuple(
        f"evidence_{c}" for c in Category
    )
    assert names[-3:] == ("code_0", "code_1", "code_2")


def test_lines_duration_and_missing_duration():
    X = use_features([use("a", ["hot", "cold"], 0), use("b", ["cold"], 100, dur_s=None)], {})
    assert X[0, LINE_COLUMNS].tolist() == [1.0, 1.0] and X[1, LINE_COLUMNS].tolist() == [0.0, 1.0]
    assert X[0, col("log_duration_s")] == pytest.approx(np.log1p(10.0))
    assert X[1, col("duration_missing")] == 1.0
    assert X[0, col("drop_kpa_hot")] == 5.0 and X[1, col("drop_kpa_hot")] == 0.0


def test_time_of_day_is_home_local():
    X = use_features([use("a", ["cold"], 0)], {}, timezone="America/New_York")  # 07:00 local
    angle = 2 * np.pi * 7 / 24
    assert X[0, col("tod_sin")] == pytest.approx(np.sin(angle))
    assert X[0, col("tod_cos")] == pytest.approx(np.cos(angle))


def test_sequence_context_counts_only_earlier_uses_on_shared_lines():
    uses = [use("a", ["cold"], 0), use("b", ["hot"], 30), use("c", ["cold"], 60)]
    X = use_features(uses, {})
    assert X[2, col("log_gap_s")] == pytest.approx(np.log1p(60.0))  # from "a", not "b"
    assert X[2, col("n_recent")] == 1
    assert X[0, col("n_recent")] == 0


def test_physical_features_land_in_their_line_and_action():
    vec = np.arange(1.0, 1.0 + len(FEATURE_NAMES))
    table = {"e1": ("cold", vec), "e2": ("cold", -vec)}
    X = use_features([use("a", ["cold"], 0, opens=["e1"], closes=["e2"])], table)
    assert X[0, col(f"cold_open_{FEATURE_NAMES[0]}")] == 1.0
    assert X[0, col(f"cold_close_{FEATURE_NAMES[-1]}")] == -vec[-1]
    assert X[0, col(f"hot_open_{FEATURE_NAMES[0]}")] == 0.0


def test_transient_table_computes_features_per_event():
    t = np.arange(1750) / 1000
    samples = np.where(t < 0.25, 400.0, 395.0).astype(np.float32)
    event = Event("e1", "h1", "cold", "cold", T0, 1000, samples)
    line, vec = transient_table([event])["e1"]
    assert line == "cold" and vec[FEATURE_NAMES.index("step_kpa")] == pytest.approx(-5.0, abs=0.5)


def test_codes_and_evidence_are_placed():
    codes = np.array([[0.5, 0.25]])
    evidence = np.full((1, len(Category)), 0.1)
    X = use_features([use("a", ["cold"], 0)], {}, codes=codes, evidence=evidence)
    assert X.shape[1] == len(feature_names(2))
    assert X[0, -2:].tolist() == [0.5, 0.25]
    assert np.all(X[0, EVIDENCE_COLUMNS[0] : EVIDENCE_COLUMNS[1]] == 0.1)
    assert np.all(use_features([use("a", ["cold"], 0)], {})[0, 2:10] == 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"codes": np.zeros((2, 3))}, "codes"), ({"evidence": np.zeros((1, 3))}, "evidence")],
)
def test_shape_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        use_features([use("a", ["cold"], 0)], {}, **kwargs)


class Decision:
    def __init__(self, category, confidence=0.0, candidates=()):
        self.category, self.confidence, self.candidates = category, confidence, candidates


def test_rule_evidence_decided_narrowed_and_silent():
    order = [str(c) for c in Category]
    ev = rule_evidence(
        [
            Decision("toilet", 0.9),
            Decision(None, 0.0, ("kitchen_faucet", "bathroom_faucet")),
            Decision(None),
        ]
    )
    assert ev[0, order.index("toilet")] == 0.9 and ev[0].argmax() == order.index("toilet")
    assert ev[0, order.index("shower")] == pytest.approx(0.05)  # (1 - 0.9) / 7 < floor
    assert ev[1, order.index("kitchen_faucet")] == 1.0 and ev[1, order.index("shower")] == 0.05
    assert np.all(ev[2] == 1.0)


def test_use_codes_average_per_action():
    codes = {"o1": np.array([1.0, 0.0]), "o2": np.array([3.0, 2.0]), "c1": np.array([5.0, 5.0])}
    u = use("a", ["hot", "cold"], 0, opens=["o1", "o2"], closes=["c1", "missing"])
    assert use_codes([u], codes, 2).tolist() == [[2.0, 1.0, 5.0, 5.0]]
