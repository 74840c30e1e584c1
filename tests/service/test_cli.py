"""The ``atlas`` commands, called through ``main(argv)`` as a user would."""

from __future__ import annotations

import json

import pytest

from service.broker import render_config
from service.cli import main
from simulator.generate import generate_run


def _write_run(tmp_path, spec, days=1):
    run = tmp_path / "run.jsonl"
    sim = generate_run(spec, days=days, seed=2)
    lines = [json.dumps(s.payload() | {"truth": s.truth}) for s in sim]
    lines.insert(5, '{"schema": "atlas.event/1", "event_id": "x"')  # a truncated line
    run.write_text("\n".join(lines) + "\n")
    (tmp_path / "run.home.json").write_text(json.dumps(spec.to_dict()))
    return run, sim


def test_ingest_registers_home_stores_and_pairs(tmp_path, home_spec, capsys):
    db = f"sqlite:///{tmp_path}/cli.db"
    run, sim = _write_run(tmp_path, home_spec)
    assert main(["db", "upgrade", "--db", db]) == 0
    assert main(["ingest", "--file", str(run), "--db", db]) == 0
    assert main(["ingest", "--file", str(run), "--db", db]) == 0  # replayed: all duplicates
    capsys.readouterr()
    assert main(["db", "stats", "--db", db, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["events"] == stats["distinct_event_ids"] == len(sim)
    assert stats["dead_letters_by_reason"] == {"bad_json": 2}
    assert stats["paired_events"] == len(sim) and stats["uses"] > len(sim) / 3


def test_homes_add_reports_errors_by_field(tmp_path, home_spec, capsys):
    db = f"sqlite:///{tmp_path}/cli.db"
    main(["db", "upgrade", "--db", db])
    good = tmp_path / "home.json"
    good.write_text(json.dumps(home_spec.to_dict()))
    assert main(["homes", "add", str(good), "--db", db]) == 0
    assert main(["homes", "add", str(good), "--db", db]) == 0
    assert "updated" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(home_spec.to_dict() | {"residents": 0}))
    assert main(["homes", "add", str(bad), "--db", db]) == 2
    assert "residents" in capsys.readouterr().err


def test_commands_refuse_an_unmigrated_database(tmp_path, capsys):
    assert main(["db", "stats", "--db", f"sqlite:///{tmp_path}/empty.db"]) == 2
    assert "atlas db upgrade" in capsys.readouterr().err


def test_deploy_config_keeps_data_like_the_test_broker():
    from pathlib import Path

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"
    keys = (
        "persistence",
        "autosave_interval",
        "max_queued_messages",
        "max_queued_bytes",
        "persistent_client_expiration",
        "autosave_on_changes",
    )

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
        return {k: v.strip() for k, v in pairs if k in keys}

    deployed = settings(deploy.read_text())
    assert deployed == settings(render_config(1883, Path("/tmp")))
    assert deployed["persistence"] == "true" and deployed["max_queued_messages"] == "0"


def test_every_bench_is_listed_with_its_help(capsys):
    """`atlas bench --help` imports every bench module: one broken module breaks them all."""
    with pytest.raises(SystemExit) as done:
        main(["bench", "--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for name in ("calibration", "codebook", "estimator", "fleet-transfer", "intake", "rules"):
        assert name in listing
