"""An engine trained as the service would train it, for the benchmarks that time what follows.

A ``preset`` home simulated with ``seed``; every use that ended before the end of ``day``
ingested; one guided label per valve from week 1 (its first use); the codebook fitted; the
day's update run. The uses after ``day`` are handed back for the benchmark to ingest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from atlas.engine import CalibrationEngine, EngineConfig
from atlas.events import Event
from atlas.pairing import PairingResult, pair_events
from atlas.uses import WaterUse
from simulator.generate import generate_run
from simulator.presets import load_preset


@dataclass
class TrainedHome:
    engine: CalibrationEngine
    events: dict[str, Event]
    pairing: PairingResult
    later: list[WaterUse]  # the uses that end after the engine's day, in pairing order
    end: datetime  # the end of the engine's day
    ingested: set[str] = field(default_factory=set)  # the later uses ingested so far

    def ingest(self, use: WaterUse) -> None:
        """Ingest one later use as the service does (its events, at its completion)."""
        self.ingested.add(use.use_id)
        self.engine.ingest(
            [use],
            [self.events[e] for e in use.event_ids],
            use.t_close or use.t,
            features=self.pairing.features,
        )


def trained_home(
    preset: str, seed: int, day: int, *, extra_days: int = 1, codebook_days: int | None = None
) -> TrainedHome:
    """The engine at the end of ``day`` (see the module docstring).

    ``codebook_days``: ingest the uses of the first that many days, fit the codebook on their
    events (as at the end of week 1), then ingest the rest, each event encoded at its ingest
    as in the service. None: ingest everything, then fit on every event up to ``day``.
    """
    if day < 7:
        raise ValueError(f"day={day} should be at least 7 (the end of the guided week)")
    spec = load_preset(preset)
    sim = generate_run(spec, days=day + extra_days, seed=seed)
    events = {s.event.event_id: s.event for s in sim}
    truth = {s.event.event_id: s.truth["valve"] for s in sim}
    pairing = pair_events(list(events.values()))
    tz = ZoneInfo(spec.model.timezone)
    first = min(e.t for e in events.values()).astimezone(tz)
    installed = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = installed + timedelta(days=day)
    fit_at = end if codebook_days is None else installed + timedelta(days=codebook_days)
    engine = CalibrationEngine(spec, installed, EngineConfig(random_state=seed))

    def ingest_until(start: datetime, stop: datetime) -> list[WaterUse]:
        batch = [u for u in pairing.uses if start <= (u.t_close or u.t) < stop]
        engine.ingest(
            batch,
            [events[e] for u in batch for e in u.event_ids],
            stop,
            features=pairing.features,
        )
        return batch

    fitted = ingest_until(installed - timedelta(days=1), fit_at)
    labelled: set[str] = set()
    for use in fitted:
        valve = Counter(truth[e] for e in use.event_ids).most_common(1)[0][0]
        if valve not in labelled and use.t < installed + timedelta(days=7):
            labelled.add(valve)
            engine.add_guided_label(use.use_id, valve, use.t)
    engine.fit_codebook([events[e] for u in fitted for e in u.event_ids], fit_at)
    if fit_at < end:
        ingest_until(fit_at, end)
    engine.daily_update(end)
    later = [u for u in pairing.uses if (u.t_close or u.t) >= end]
    return TrainedHome(engine, events, pairing, later, end)
