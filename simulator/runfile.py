"""Run files: a simulated run as JSON Lines, with its home spec beside it.

Each line is the exact payload a gateway would publish plus a ``truth`` key (valve, fixture,
category, action, use_id, lines, overlap), sorted by event time; ``<stem>.home.json`` holds the
spec used (``HomeSpec.to_dict()``). Benchmarks and the streamer read runs back with
:func:`read_run`, which decodes every payload through the same strict decoder as the intake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from atlas.events import Event, decode_event
from atlas.homespec import HomeSpec, parse_home_spec
from simulator.generate import SimEvent

TRUTH_KEY = "truth"


def home_path(path: str | Path) -> Path:
    """``run.jsonl`` -> ``run.home.json``."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".home.json")


def write_run(path: str | Path, spec: HomeSpec, sim_events: Iterable[SimEvent]) -> int:
    """Write the run and its home spec; returns the number of events written."""
    path = Path(path)
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for sim in sorted(sim_events, key=lambda s: s.event.t):
            line = sim.payload()
            line[TRUTH_KEY] = sim.truth
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            n += 1
    home_path(path).write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")
    return n


def read_payloads(path: str | Path) -> list[tuple[dict, dict]]:
    """(published payload, truth) per line, undecoded: what the streamer sends."""
    rows = []
    with Path(path).open(encoding="utf-8") as src:
        for number, text in enumerate(src, start=1):
            if not text.strip():
                continue
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON: {exc}") from None
            truth = payload.pop(TRUTH_KEY, None)
            if not isinstance(truth, dict):
                raise ValueError(f"{path}:{number}: missing the {TRUTH_KEY!r} object")
            rows.append((payload, truth))
    return rows


def read_run(path: str | Path) -> tuple[HomeSpec, list[tuple[Event, dict]]]:
    """The home spec and every (decoded event, truth) of a run file."""
    spec_file = home_path(path)
    if not spec_file.exists():
        raise FileNotFoundError(f"{path}: its home spec {spec_file} is missing")
    spec = parse_home_spec(json.loads(spec_file.read_text(encoding="utf-8")))
    return spec, [(decode_event(payload), truth) for payload, truth in read_payloads(path)]
