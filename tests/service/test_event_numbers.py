"""Numbers out of range in an event payload: a reason of their own that names the field."""

from __future__ import annotations

import json

import pytest
from svc_factories import make_event

from atlas.events import EventError, decode_event, encode_event


def _with(field: str, literal: str) -> bytes:
    """The payload of a good event with ``field`` written as the JSON ``literal``."""
    text = json.dumps(encode_event(make_event("h-x", 1)) | {field: 7})
    return text.replace(f'"{field}": 7', f'"{field}": {literal}').encode()


@pytest.mark.parametrize(
    ("field", "literal", "reason"),
    [
        ("scale_kpa", "1" + "0" * 400, "number_too_large"),
        ("sample_rate_hz", "9" * 5000, "number_too_large"),
        ("n_samples", "-" + "9" * 30, "number_too_large"),
        ("offset_kpa", "Infinity", "bad_offset"),
        ("offset_kpa", "NaN", "bad_offset"),
        ("scale_kpa", "-Infinity", "bad_scale"),
        ("scale_kpa", "1e400", "bad_scale"),  # a float literal that overflows: Infinity
        ("sample_rate_hz", "NaN", "wrong_type"),
    ],
)
def test_number_out_of_range_names_its_field(field, literal, reason) -> None:
    with pytest.raises(EventError) as refused:
        decode_event(_with(field, literal))
    assert refused.value.reason == reason
    assert field in str(refused.value)


def test_huge_integer_among_json_samples_is_named() -> None:
    payload = encode_event(make_event("h-x", 1), encoding="json")
    text = json.dumps(payload).replace("[", "[" + "1" * 500 + ", ", 1)
    with pytest.raises(EventError, match="'samples' is an integer of 500 digits"):
        decode_event(text)


def test_integers_up_to_the_limit_are_still_checked_by_range() -> None:
    with pytest.raises(EventError) as refused:
        decode_event(_with("sample_rate_hz", "9" * 20))
    assert refused.value.reason == "bad_sample_rate"
