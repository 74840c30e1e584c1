"""The engine's parts on their own: the row buffer, the request book, the display record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atlas.engine.display import DisplayState
from atlas.engine.records import LabelRequest
from atlas.engine.requests import RequestBook
from atlas.engine.rowbuffer import RowBuffer
from atlas.levels import LevelDecision, LevelState

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_row_buffer_matches_a_list_of_rows_under_inserts_and_deletes():
    rng = np.random.default_rng(0)
    buf, expected = RowBuffer(3), []
    for _ in range(300):
        if expected and rng.random() < 0.3:
            pos = int(rng.integers(len(expected)))
            buf.delete(pos)
            del expected[pos]
        else:
            pos = int(rng.integers(len(expected) + 1))
            row = rng.normal(size=3)
            buf.insert(pos, row)
            expected.insert(pos, row)
        np.testing.assert_array_equal(buf.array, np.reshape(expected, (-1, 3)))
    with pytest.raises(IndexError):
        buf.insert(len(buf) + 1)


def _request(rid: str, day: int, expires_in_h: float) -> LabelRequest:
    return LabelRequest(
        rid,
        f"use-{rid}",
        day,
        T0,
        T0 + timedelta(hours=expires_in_h),
        ("a", "not sure"),
        0.5,
        False,
        "AtlasStrategy",
        1,
        {},
    )


def test_request_book_draws_a_day_once_and_only_moves_requests_forward():
    book = RequestBook()
    assert book.drawn(8) is None
    book.record_round(8, [_request("r0", 8, 1), _request("r1", 8, 30)])
    book.record_round(9, [])
    assert [r.request_id for r in book.drawn(8)] == ["r0", "r1"] and book.drawn(9) == ()
    with pytest.raises(ValueError, match="already drawn"):
        book.record_round(8, [])
    assert book.expire_due(T0 + timedelta(hours=2)) == ["r0"]
    answered = book.close("r1", "answered", answer="a", answered_at=T0)
    assert (answered.state, answered.answer) == ("answered", "a")
    with pytest.raises(ValueError, match="already answered"):
        book.close("r1", "expired")
    again = RequestBook()
    again.load(book.to_dict())
    assert again.all() == book.all() and again.drawn(9) == ()
    assert book.use_ids() == {"use-r0", "use-r1"}


def test_display_state_round_trips_its_level_lumps_and_history():
    shown = DisplayState()
    decision = LevelDecision("fixture", None, LevelState("fixture", 0), "fixture goals met", ())
    shown.record(
        T0,
        15,
        decision,
        (("wc_up", "wc_down"),),
        {},
        model_version=3,
        n_labels={"guided": 9, "active": 6},
    )
    again = DisplayState()
    again.load(shown.to_dict())
    assert again.level == "fixture" and again.lumps == (("wc_up", "wc_down"),)
    assert again.history == shown.history and again.history[0]["labels"]["active"] == 6
