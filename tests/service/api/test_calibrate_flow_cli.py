"""``atlas calibrate-flow``, called through ``main(argv)`` as an installer would, on SQLite and
PostgreSQL: what it prints after a bucket fill and a meter reading, ``--list``, and its errors
(one line, exit 2, nothing stored)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from test_api_usage import WEEK, usage_home  # noqa: F401 (a fixture: see cli_home)
from test_flow_calibration_store import FILL_AT, add_fill

from service.cli import main
from service.storage.flowcalibrations import flow_calibrations_of


@pytest.fixture
def cli_home(request: pytest.FixtureRequest, engine: Engine, uid: str) -> dict:
    """Home A with the usage endpoint tests' uses and a bucket fill, and the ``--db`` URL of
    the test's database (on PostgreSQL, its schema of its own: tests/conftest.py)."""
    home = request.getfixturevalue("usage_home")
    url = engine.url
    if url.get_backend_name() == "postgresql":
        url = url.update_query_dict({"options": f"-csearch_path=t_{uid}"})
    add_fill(engine, home["home_id"])
    return {**home, "db": url.render_as_string(hide_password=False)}


def calibrate(home: dict, *args: str) -> int:
    return main(["calibrate-flow", "--db", home["db"], "--home", home["home_id"], *args])


def test_a_fill_then_a_meter_reading_then_the_list(cli_home: dict, capsys) -> None:
    at = (FILL_AT + timedelta(minutes=2)).isoformat()
    assert calibrate(cli_home, "--fixture", "kitchen sink", "--litres", "5", "--at", at) == 0
    out = capsys.readouterr().out
    assert "kitchen sink/cold: this fill read " in out and " L before, 5.0 L now" in out
    assert "; other fixtures moved by -" in out
    assert "Stored as calibration #" in out and "flow model 'fixture:kitchen-sink/cold'" in out
    # the same fill again would count one measurement twice
    assert calibrate(cli_home, "--fixture", "kitchen sink", "--litres", "5", "--at", at) == 2
    assert "is calibration #1 already; fill the bucket again" in capsys.readouterr().err

    period = ["--from", WEEK["from"], "--to", WEEK["to"]]
    assert calibrate(cli_home, "--meter-litres", "400", *period) == 0
    out = capsys.readouterr().out
    assert "2026-04-06 00:00 to 2026-04-20 00:00 (home time): the uses read " in out
    assert "L before, 400.0 L now (the meter: 400 L); every fixture moved by " in out
    assert "; 1 use without a duration left out." in out and "flow model 'meter'" in out

    assert calibrate(cli_home, "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "fill at kitchen sink/cold: 5 L measured" in lines[0]
    assert "water meter: 400 L from 2026-04-06 00:00 to 2026-04-20 00:00" in lines[1]
    assert lines[2].startswith("the home's litres use the flow model 'meter'")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--fixture", "kitchen sink", "--litres", "5", "--home", "h-nowhere"],
            "no home 'h-nowhere': register it first",
        ),
        (
            ["--fixture", "scullery", "--litres", "5"],
            "has no fixture 'scullery'; its fixtures: kitchen-sink (kitchen sink), ",
        ),
        (
            ["--fixture", "kitchen sink", "--litres", "5", "--valve", "tepid"],
            "no valve 'tepid'; its valves: hot (hot), cold (cold), mixed (hot+cold)",
        ),
        (  # the default --at is now: nothing closed in the half hour before it
            ["--fixture", "kitchen sink", "--litres", "5"],
            "no use on the cold line closed between ",
        ),
        (
            ["--fixture", "kitchen sink", "--litres", "5", "--use", "u-nothing"],
            "has no use 'u-nothing'",
        ),
        (["--fixture", "kitchen sink"], "--fixture needs --litres"),
        (["--fixture", "kitchen sink", "--litres", "5", "--at", "noon"], "--at 'noon' is not"),
        (["--fixture", "kitchen sink", "--litres", "0", "--at", "2026-04-15T10:01"], "above 0"),
        (["--meter-litres", "400", "--from", WEEK["from"]], "needs --from and --to"),
        (["--meter-litres", "400", "--from", "2026-05-01", "--to", "2026-05-02"], "no use with"),
        (["--list", "--litres", "5"], "--litres: not used with --list"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    cli_home: dict, engine: Engine, capsys, args: list[str], said: str
) -> None:
    argv = ["calibrate-flow", "--db", cli_home["db"]]
    argv += args if "--home" in args else ["--home", cli_home["home_id"], *args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("atlas: error: ") and said in line, line
    with engine.connect() as conn:
        assert flow_calibrations_of(conn, cli_home["home_id"]) == []
