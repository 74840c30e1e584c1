"""atlas-sim: generate writes the run file and its home spec; other commands behave."""

from datetime import UTC, datetime

from simulator.cli import fixture_check_events, main, messages_from_payloads
from simulator.presets import load_preset
from simulator.runfile import read_run


def test_generate_writes_run_and_home_json(tmp_path):
    out = tmp_path / "run.jsonl"
    assert (
        main(["generate", "--preset", "apartment", "--days", "1", "--seed", "3", "--out", str(out)])
        == 0
    )
    assert (tmp_path / "run.home.json").exists()
    spec, rows = read_run(out)
    assert spec.home_id == "apartment"
    assert len(rows) == len(out.read_text().splitlines()) > 20


def test_generate_from_a_home_spec_file(tmp_path):
    from simulator.presets import preset_text

    home = tmp_path / "home.toml"
    home.write_text(preset_text("two_bath_house"))
    out = tmp_path / "mine.jsonl"
    assert main(["generate", "--home", str(home), "--days", "1", "--out", str(out)]) == 0
    assert (tmp_path / "mine.home.json").exists()


def test_presets_lists_each_with_a_description(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "apartment",
        "two_bath_house",
        "three_bath_house",
    ]


def test_fixture_check_emits_one_use_now():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    events = fixture_check_events(
        load_preset("two_bath_house"), "kitchen sink", "mixed", now=now, duration_s=4.0
    )
    assert sorted((e.truth["action"], e.event.line) for e in events) == [
        ("close", "cold"),
        ("close", "hot"),
        ("open", "cold"),
        ("open", "hot"),
    ]
    assert {e.truth["valve"] for e in events} == {"kitchen-sink/mixed"}
    opens = [e.event.t for e in events if e.truth["action"] == "open"]
    assert all(abs((t - now).total_seconds() + 0.25) < 0.05 for t in opens)


def test_unknown_fixture_or_valve_is_an_error_naming_it(capsys):
    assert main(["fixture", "--preset", "apartment", "--fixture", "garage", "--valve", "hot"]) == 2
    assert "--fixture 'garage'" in capsys.readouterr().err
    assert main(["fixture", "--preset", "apartment", "--fixture", "toilet", "--valve", "hot"]) == 2
    assert "--valve 'hot'" in capsys.readouterr().err


def test_messages_are_relative_to_the_first_event():
    events = fixture_check_events(
        load_preset("apartment"),
        "toilet",
        "fill",
        now=datetime(2026, 5, 1, tzinfo=UTC),
        duration_s=10.0,
    )
    messages = messages_from_payloads([e.payload() for e in events])
    assert messages[0][0] == "atlas/v1/homes/apartment/sensors/cold/events"
    assert [round(m[2], 3) for m in messages] == [0.0, 10.0]


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "waves.png"
    assert main(["plot", "--preset", "apartment", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
