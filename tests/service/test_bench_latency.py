"""The latency bench's re-timing: the rate asked for, each home's own short gaps kept."""

from __future__ import annotations

import numpy as np

from service.bench.latency import compress_idle_gaps


def _homes(n: int, seed: int = 0) -> list[np.ndarray]:
    """Per home: bursts of events a few ms to seconds apart, hours between the bursts."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gaps = np.where(
            rng.random(60) < 0.3, rng.uniform(0.003, 1.5, 60), rng.uniform(600, 7200, 60)
        )
        out.append(1.7e9 + np.concatenate(([0.0], np.cumsum(gaps))))
    return out


def test_the_events_arrive_at_the_rate_asked_for():
    events, _ = compress_idle_gaps(_homes(50), 1000, 200.0, seed=1)
    offsets = [t for _, _, t in events]
    assert len(events) == 1000 and offsets[0] == 0.0 and offsets == sorted(offsets)
    assert abs((len(offsets) - 1) / offsets[-1] - 200.0) < 2.0


def test_each_home_keeps_its_order_and_its_gaps_below_the_cap():
    homes = _homes(50)
    events, cap = compress_idle_gaps(homes, 1000, 200.0, seed=1)
    by_home: dict[int, list[tuple[int, float]]] = {}
    kept = cut = 0
    for k, i, t in events:
        by_home.setdefault(k, []).append((i, t))
    for k, taken in by_home.items():
        index = [i for i, _ in taken]
        assert index == list(range(len(index)))  # the home's first events, in order
        original = np.diff(homes[k][: len(index)])
        new = np.diff([t for _, t in taken])
        np.testing.assert_allclose(new, np.minimum(original, cap), atol=1e-6)
        kept, cut = kept + int((original < cap).sum()), cut + int((original > cap).sum())
    assert kept > 50 and cut > 50  # both kinds of gap were checked


def test_fewer_homes_need_shorter_idle_gaps_for_the_same_rate():
    _, cap_many = compress_idle_gaps(_homes(100), 2000, 200.0, seed=1)
    _, cap_few = compress_idle_gaps(_homes(20), 2000, 200.0, seed=1)
    assert cap_few < cap_many


def test_homes_re_timed_with_idle_gaps_above_the_minimum_pair_as_simulated():
    """Uses in the bench are scored by the simulator's use ids: re-timing must not change how
    events pair (cutting idle gaps below a wave's window did: 8 of 234 uses at 0.5 s)."""
    from datetime import UTC, datetime

    from atlas.events import decode_event
    from atlas.pairing import pair_events
    from service.bench.latency import MIN_IDLE_GAP_S, retimed_events
    from service.demo import SimulatedHome

    homes = [SimulatedHome.generate("two_bath_house", 1, 1 + k, home_id=f"h{k}") for k in range(5)]
    events, cap = retimed_events(homes, 10**6, 2.0, 1, datetime.now(UTC))
    assert cap >= MIN_IDLE_GAP_S
    re_timed: dict[str, list] = {}
    for _, _, payload, _, _ in events:
        event = decode_event(payload)
        re_timed.setdefault(event.home_id, []).append(event)
    for home in homes:
        simulated = pair_events([s.event for s in home.sim]).uses
        uses = pair_events(re_timed[home.spec.home_id]).uses
        assert [u.event_ids for u in uses] == [u.event_ids for u in simulated]


def test_stage_summary_reads_the_service_histograms():
    """What the bench prints about the service's stages comes from its /metrics histograms."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from service.bench.latency import stage_latencies
    from service.metrics import STAGE_BUCKETS

    registry = CollectorRegistry()
    intake = Histogram(
        "atlas_intake_commit_delay_seconds", "x", buckets=STAGE_BUCKETS, registry=registry
    )
    Histogram("atlas_classification_seconds", "not a stage", registry=registry).observe(1.0)
    for seconds in [0.004] * 60 + [0.03] * 39 + [0.4]:
        intake.observe(seconds)
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert stage_latencies(families) == {
        "atlas_intake_commit_delay": {
            "what": "intake: message received -> batch committed",
            "timed": 100,
            "mean_ms": 18.1,  # (60 * 4 + 39 * 30 + 400) / 100
            "p50_at_most_ms": 5.0,
            "p99_at_most_ms": 30.0,
        }
    }
