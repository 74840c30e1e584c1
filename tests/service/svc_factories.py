"""Events and payloads for the service tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from atlas.events import Event, encode_event
from atlas.homespec import HomeSpec
from simulator.generate import generate_run

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def wave(seed: int, n: int = 1750, rate: int = 1000) -> np.ndarray:
    """A pressure transient: a drop at 0.25 s with a damped ring, plus noise (kPa)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    after = t >= 0.25
    ring = 30 * np.exp(-3 * (t - 0.25)) * np.sin(2 * np.pi * 40 * (t - 0.25))
    return (420 - after * (25 + ring) + rng.normal(0, 0.1, n)).astype(np.float32)


def make_event(home_id: str, i: int, sensor_id: str = "hot") -> Event:
    return Event(
        event_id=f"{home_id}-e{i:05d}",
        home_id=home_id,
        sensor_id=sensor_id,
        line=sensor_id,
        t=T0 + timedelta(seconds=30 * i),
        sample_rate_hz=1000,
        samples=wave(i),
    )


def topic(prefix: str, home_id: str, sensor_id: str) -> str:
    return f"{prefix}/homes/{home_id}/sensors/{sensor_id}/events"


def payload(event: Event, **overrides: object) -> bytes:
    return json.dumps(encode_event(event) | overrides).encode()


def sim_messages(
    spec: HomeSpec, prefix: str, days: int = 1, seed: int = 1
) -> tuple[list[Event], list[tuple[str, bytes, float]]]:
    """A simulated run of ``spec`` as (events, stream messages on ``prefix``)."""
    sim = generate_run(spec, days=days, seed=seed)
    t0 = sim[0].event.t
    messages = [
        (
            topic(prefix, spec.home_id, s.event.sensor_id),
            json.dumps(s.payload()).encode(),
            (s.event.t - t0).total_seconds(),
        )
        for s in sim
    ]
    return [s.event for s in sim], messages
