"""Home spec: installers' typos must be refused with the field named, defaults must be derived."""

import json

import pytest

from atlas.domain import ClosureKind, Line
from atlas.homespec import HomeSpecError, load_home_spec, parse_home_spec
from simulator.presets import PRESETS, load_preset


def minimal_spec() -> dict:
    return {
        "home_id": "h1",
        "name": "test home",
        "residents": 2,
        "static_pressure_kpa": 420,
        "sensors": {"hot": {"sensor_id": "hot"}, "cold": {"sensor_id": "cold"}},
        "fixtures": [
            {
                "id": "kitchen",
                "name": "kitchen sink",
                "category": "kitchen_faucet",
                "handle": "single_handle",
                "runs": {
                    "hot": {"material": "copper", "length_m": 8},
                    "cold": {"material": "copper", "length_m": 7},
                },
            },
            {
                "id": "toilet-up",
                "name": "upstairs toilet",
                "category": "toilet",
                "handle": "fill_valve",
                "runs": {"cold": {"material": "pex", "length_m": 12}},
            },
        ],
    }


def test_valves_are_derived_from_the_handle_type():
    spec = parse_home_spec(minimal_spec())
    assert spec.hierarchy.valve_ids == (
        "kitchen/hot",
        "kitchen/cold",
        "kitchen/mixed",
        "toilet-up/fill",
    )
    mixed = spec.valve("kitchen/mixed")
    assert mixed.lines == (Line.HOT, Line.COLD)
    assert set(mixed.runs) == {Line.HOT, Line.COLD}
    fill = spec.valve("toilet-up/fill")
    assert fill.closure.kind is ClosureKind.FLOAT
    assert set(fill.runs) == {Line.COLD}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda d: d["fixtures"][1]["runs"]["cold"].update(length_m=-1),
            "fixtures[1].runs.cold.length_m",
        ),
        (
            lambda d: d["fixtures"][0]["runs"]["hot"].update(lenght_m=3),
            "fixtures[0].runs.hot.lenght_m",
        ),
        (lambda d: d["fixtures"][0].update(category="sauna"), "fixtures[0].category"),
        (lambda d: d.update(home_id="Bad Home!"), "home_id"),
        (lambda d: d["sensors"].pop("hot"), "sensors"),
        (lambda d: d["fixtures"][0]["runs"].pop("cold"), "runs"),
        (lambda d: d["fixtures"].append(dict(d["fixtures"][1])), "duplicate fixture id"),
        (lambda d: d.update(static_pressure_kpa=5000), "static_pressure_kpa"),
        (lambda d: d.update(timezone="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_invalid_spec_error_names_the_field(mutate, field):
    data = minimal_spec()
    mutate(data)
    with pytest.raises(HomeSpecError) as err:
        parse_home_spec(data)
    assert field in str(err.value)


def test_json_and_toml_files_load_and_round_trip(tmp_path):
    path = tmp_path / "home.json"
    path.write_text(json.dumps(minimal_spec()))
    spec = load_home_spec(path)
    again = parse_home_spec(spec.to_dict())
    assert again.hierarchy == spec.hierarchy


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "home.toml"
    path.write_text("home_id = [unclosed")
    with pytest.raises(HomeSpecError, match=r"home\.toml"):
        load_home_spec(path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_specs(name):
    spec = load_preset(name)
    assert len(spec.valves) >= 5
    assert parse_home_spec(spec.to_dict()).hierarchy == spec.hierarchy
