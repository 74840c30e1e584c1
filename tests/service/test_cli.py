"""The ``atlas`` commands, called through ``main(argv)`` as a user would."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from service.api.auth import TokenAuthenticator
from service.broker import listening, render_config
from service.cli import main
from service.mqttutil import parse_broker_url
from service.settings import Settings, TokenSettings, hash_token
from service.storage.deadletters import DeadLetter, insert_dead_letters
from service.storage.engine import make_engine
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


def test_token_new_prints_a_fresh_token_once_with_its_digest(capsys):
    outputs = []
    for _ in range(2):
        assert main(["token", "new", "--role", "homeowner", "--home", "smith-house"]) == 0
        lines = capsys.readouterr().out.splitlines()[:2]
        outputs.append({k: v.strip() for k, v in (line.split(":", 1) for line in lines)})
    first, second = outputs
    assert first["token"] != second["token"] and len(first["token"]) >= 43
    assert first["sha256"] == hash_token(first["token"])
    settings = Settings(tokens=TokenSettings(homeowner_sha256={"smith-house": [first["sha256"]]}))
    principal = TokenAuthenticator(settings).authenticate(first["token"])
    assert principal.role == "homeowner" and principal.homes == {"smith-house"}


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "homeowner"],
        ["--role", "admin", "--home", "h"],
        ["--role", "homeowner", "--home", "Bad Id"],
    ],
)
def test_token_new_refuses_a_home_that_does_not_fit_the_role(args, capsys):
    assert main(["token", "new", *args]) == 2
    assert "--home" in capsys.readouterr().err


def test_token_hash_reads_the_secret_from_stdin_not_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("tok-admin-0123456789\n"))
    assert main(["token", "hash"]) == 0
    assert capsys.readouterr().out.strip() == hash_token("tok-admin-0123456789")
    with pytest.raises(SystemExit):
        main(["token", "hash", "tok-admin-0123456789"])


def test_deadletters_list_and_purge(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/cli.db"
    assert main(["db", "upgrade", "--db", db]) == 0
    engine = make_engine(db)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        insert_dead_letters(
            conn,
            [
                DeadLetter(
                    f"t/{i}",
                    b"x" * i,
                    "bad_json" if i % 2 else "too_large",
                    f"m{i}",
                    None,
                    now - timedelta(days=30 - i),
                )
                for i in range(10)
            ],
        )
    engine.dispose()
    capsys.readouterr()
    assert main(["deadletters", "list", "--db", db, "--reason", "bad_json", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["topic"] for r in listed] == ["t/9", "t/7", "t/5", "t/3", "t/1"]
    # ages 30 - i days: 25 days keeps i >= 6 (i = 5 is 25 days and a moment); 3 rows, i >= 7
    assert main(["deadletters", "purge", "--db", db, "--max-age-days", "25"]) == 0
    assert "purged 6" in capsys.readouterr().out
    purge = ["deadletters", "purge", "--db", db, "--max-age-days", "25", "--max-rows", "3"]
    assert main(purge) == 0
    assert "purged 1" in capsys.readouterr().out
    assert main(["deadletters", "list", "--db", db, "--json"]) == 0
    assert [r["topic"] for r in json.loads(capsys.readouterr().out)] == ["t/9", "t/8", "t/7"]
    assert main(["deadletters", "purge", "--db", db, "--max-rows", "0"]) == 2
    assert "dead_letter_max_rows" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        (
            ["serve", "--config", "/nonexistent/atlas.toml"],
            {},
            "/nonexistent/atlas.toml does not exist",
        ),
        (["serve"], {"ATLAS_HTTP_PORT": "99999"}, "http_port: Input should be less than or equal"),
        (  # a token pasted where its digest belongs would lock its owner out without a word
            ["serve"],
            {"ATLAS_TOKENS__ADMIN_SHA256": '["my-admin-token"]'},
            "tokens.admin_sha256.0: String should match pattern",
        ),
    ],
)
def test_serve_names_the_wrong_setting_instead_of_a_traceback(argv, env, said, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlas: error: settings: ") and said in err
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_terminated_demo_stops_its_private_broker(tmp_path):
    """kill / systemd stop: the demo unwinds as on Ctrl-C and its mosquitto goes with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--days", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    broker_url = None
    for line in proc.stdout:
        if "started a private mosquitto at" in line:
            broker_url = line.split(" at ", 1)[1].split()[0]
        if "service up:" in line:
            break
    assert broker_url is not None
    host, port = parse_broker_url(broker_url)[:2]
    assert listening(port, host)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    assert "interrupted" in proc.stdout.read()
    assert not listening(port, host)
