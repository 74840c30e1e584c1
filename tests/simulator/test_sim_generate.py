"""simulator.generate and simulator.runfile: deterministic, contract-valid runs with truth."""

from collections import Counter, defaultdict

import jsonschema
import pytest

from atlas.events import decode_event, event_json_schema
from simulator.generate import generate_run
from simulator.presets import PRESETS, load_preset
from simulator.runfile import home_path, read_run, write_run


@pytest.fixture(scope="module")
def two_days():
    return generate_run(load_preset("two_bath_house"), days=2, seed=7)


def test_same_seed_gives_identical_payloads(two_days):
    again = generate_run(load_preset("two_bath_house"), days=2, seed=7)
    assert [e.payload() for e in again] == [e.payload() for e in two_days]
    assert [e.truth for e in again] == [e.truth for e in two_days]


def test_other_seed_gives_another_run(two_days):
    other = generate_run(load_preset("two_bath_house"), days=2, seed=8)
    assert [e.payload()["samples"] for e in other[:5]] != [
        e.payload()["samples"] for e in two_days[:5]
    ]


def test_every_payload_is_valid_against_the_schema_and_decodes(two_days):
    validator = jsonschema.Draft202012Validator(event_json_schema())
    ids = set()
    for sim in two_days:
        payload = sim.payload()
        validator.validate(payload)
        assert "truth" not in payload
        decoded = decode_event(payload)
        assert decoded.event_id == sim.event.event_id
        assert len(decoded.samples) == 1750 and decoded.sample_rate_hz == 1000
        ids.add(decoded.event_id)
    assert len(ids) == len(two_days)


def test_every_use_opens_and_closes_on_each_of_its_lines(two_days):
    actions = defaultdict(list)
    for sim in two_days:
        assert sim.event.line in sim.truth["lines"]
        actions[(sim.truth["use_id"], sim.event.line)].append(sim.truth["action"])
    assert all(sorted(a) == ["close", "open"] for a in actions.values())
    times = [sim.event.t for sim in two_days]
    assert times == sorted(times)


def test_truth_names_valve_fixture_and_category(two_days):
    spec = load_preset("two_bath_house")
    for sim in two_days:
        truth = sim.truth
        assert spec.hierarchy.fixture_of[truth["valve"]] == truth["fixture"]
        assert str(spec.hierarchy.category_of_fixture[truth["fixture"]]) == truth["category"]
    assert any(sim.truth["overlap"] for sim in two_days)
    assert not all(sim.truth["overlap"] for sim in two_days)


def test_both_identical_toilets_are_used(two_days):
    valves = Counter(sim.truth["valve"] for sim in two_days)
    assert valves["bath1-toilet/fill"] > 0 and valves["bath2-toilet/fill"] > 0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_generates(preset):
    events = generate_run(load_preset(preset), days=1, seed=1)
    assert len(events) > 20


def test_run_file_round_trips(tmp_path, two_days):
    spec = load_preset("two_bath_house")
    path = tmp_path / "run.jsonl"
    assert write_run(path, spec, two_days) == len(two_days)
    assert home_path(path) == tmp_path / "run.home.json"
    spec_back, rows = read_run(path)
    assert spec_back.to_dict() == spec.to_dict()
    assert [truth for _, truth in rows] == [sim.truth for sim in two_days]
    assert rows[0][0].event_id == two_days[0].event.event_id


def test_negative_variation_is_refused():
    with pytest.raises(ValueError, match="variation=-1"):
        generate_run(load_preset("apartment"), days=1, seed=1, variation=-1.0)
