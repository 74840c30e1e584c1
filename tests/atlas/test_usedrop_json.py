"""UseDrop.to_dict / from_dict: a stored calibration's measurement read back from JSON is the
same use, so replaying it gives the very model it gave when recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from atlas.volume import UseDrop, calibrate_known_volume, default_flow_model, estimate_volumes
from simulator.presets import load_preset

T0 = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)


def _through_json(use: UseDrop) -> UseDrop:
    return UseDrop.from_dict(json.loads(json.dumps(use.to_dict())))


def test_every_field_survives_json_exactly() -> None:
    fill = UseDrop(
        "u-fill",
        ("cold",),
        T0,
        T0 + timedelta(seconds=31, microseconds=7),
        {"cold": 0.1 + 0.2},  # 0.30000000000000004: the last bit counts
        "kitchen-sink/cold",
        (),
        {"cold": 1 / 3},
    )
    beside = UseDrop(
        "u-beside",
        ("hot", "cold"),
        T0.astimezone(timezone(timedelta(hours=-6))),
        None,
        {"hot": 20.0, "cold": 18.5},
        None,
        ("bath1-shower/mixed", "bath2-tub/mixed"),
    )
    for use in (fill, beside):
        back = _through_json(use)
        assert back == use
        assert back.t_open.utcoffset() == use.t_open.utcoffset()
    assert _through_json(fill).drop_kpa["cold"] == 0.30000000000000004


def test_a_replayed_calibration_is_the_recorded_one() -> None:
    spec = load_preset("two_bath_house")
    model = default_flow_model(spec)
    fill = UseDrop(
        "u-fill",
        ("cold",),
        T0,
        T0 + timedelta(seconds=29.7),
        {"cold": 23.456789},
        "kitchen-sink/cold",
    )
    context = [
        UseDrop(
            "u-wc",
            ("cold",),
            T0 + timedelta(seconds=5),
            T0 + timedelta(seconds=44),
            {"cold": 14.2},
            "bath1-toilet/fill",
        )
    ]
    recorded = calibrate_known_volume(model, [fill], 5.0, context=context)
    replayed = calibrate_known_volume(
        model, [_through_json(fill)], 5.0, context=[_through_json(u) for u in context]
    )
    assert replayed == recorded
    # the toilet ran throughout, so the fill is not quite 5 L after (the overlap moves too),
    # but much nearer than before
    before, after = (estimate_volumes([fill, *context], m)[0].litres for m in (model, replayed))
    assert abs(after - 5.0) < abs(before - 5.0) / 4
