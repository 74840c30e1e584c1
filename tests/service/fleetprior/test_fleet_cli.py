"""``atlas fleet status|rebuild|show``, called through ``main(argv)`` as an operator would."""

from __future__ import annotations

import json
import time

from fp_factories import spec_of, store_calibrated_home

from service.cli import main
from service.storage.engine import make_engine


def test_rebuild_then_status_and_show(tmp_path, uid, capsys):
    db = f"sqlite:///{tmp_path}/cli.db"
    assert main(["db", "upgrade", "--db", db]) == 0
    config = tmp_path / "atlas.toml"
    # service time 2026-06-01: the homes simulated from 2026-03-02 are calibrated by then
    config.write_text(
        f'sim_start = "2026-06-01T00:00:00+00:00"\nsim_wall_start = {time.time()}\n'
        "[fleet]\nmin_homes = 3\n"
    )
    assert main(["fleet", "rebuild", "--db", db, "--config", str(config)]) == 1
    assert "0 calibrated homes" in capsys.readouterr().out
    engine = make_engine(db)
    for i, preset in enumerate(("apartment", "two_bath_house", "apartment")):
        store_calibrated_home(engine, spec_of(preset, f"c{i}-{uid}"), seed=40 + i)
    engine.dispose()
    assert main(["fleet", "rebuild", "--db", db, "--config", str(config)]) == 0
    assert "fleet version 1 built from 3 homes" in capsys.readouterr().out
    assert main(["fleet", "status", "--db", db, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["n_homes"], v["homes_using"]) for v in status["versions"]] == [
        (1, 3, 0)
    ]
    assert status["opted_out"] == 0
    assert main(["fleet", "status", "--db", db]) == 0
    assert "version 1: built 2026-06-01" in capsys.readouterr().out
    assert main(["fleet", "show", "--db", db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["codebook"], shown["accuracy_prior_used"]) == (1, True, False)
    assert main(["fleet", "show", "--db", db, "--version", "7"]) == 2
    assert "no such fleet version" in capsys.readouterr().err
