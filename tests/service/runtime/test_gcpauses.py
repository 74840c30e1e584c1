"""Collector pauses are timed and exposed as a Prometheus histogram; start-up is frozen and full
collections are spaced out."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, generate_latest

from service.gcpauses import (
    FULL_COLLECTION_EVERY,
    GcPauseCollector,
    PauseTimer,
    freeze_startup,
    space_full_collections,
)


def test_each_collection_is_timed_with_its_generation():
    seen: list[tuple[int, float]] = []
    timer = PauseTimer(lambda generation, s: seen.append((generation, s)))
    timer.install()
    try:
        gc.collect(1)
        gc.collect()
    finally:
        timer.uninstall()
    generations = [g for g, _ in seen]  # other collections may come in between
    assert 1 in generations and 2 in generations[generations.index(1) + 1 :]
    assert all(s >= 0 for _, s in seen)


def test_pauses_are_exposed_as_a_cumulative_histogram():
    collector = GcPauseCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    for seconds in (0.0005, 0.03, 0.3, 2.0):
        collector.record("serve", 2, seconds)
    collector.record("provisional", 0, 0.002)
    text = generate_latest(registry).decode()
    serve = 'generation="2",le="{}",process="serve"'
    assert f"atlas_gc_pause_seconds_bucket{{{serve.format('0.001')}}} 1.0" in text
    assert f"atlas_gc_pause_seconds_bucket{{{serve.format('0.05')}}} 2.0" in text
    assert f"atlas_gc_pause_seconds_bucket{{{serve.format('0.5')}}} 3.0" in text
    assert f"atlas_gc_pause_seconds_bucket{{{serve.format('+Inf')}}} 4.0" in text
    assert 'atlas_gc_pause_seconds_count{generation="2",process="serve"} 4.0' in text
    assert 'atlas_gc_pause_seconds_sum{generation="2",process="serve"} 2.3305' in text
    assert 'atlas_gc_pause_seconds_count{generation="0",process="provisional"} 1.0' in text


def test_start_up_objects_are_frozen_out_of_later_collections():
    try:
        freeze_startup()
        assert gc.get_freeze_count() > 10_000  # the imported libraries' objects
    finally:
        gc.unfreeze()


def test_a_growing_heap_gets_a_full_collection_at_most_once_per_spacing():
    """A heap growing by a million containers (a service loading its homes) is scanned whole
    eight times with CPython's default spacing of 10 (measured); spaced, at most twice."""
    seen: list[int] = []
    timer = PauseTimer(lambda generation, s: seen.append(generation))
    before = gc.get_threshold()
    try:
        space_full_collections()
        timer.install()
        kept = [[i] for i in range(1_000_000)]
    finally:
        timer.uninstall()
        gc.set_threshold(*before)
    assert len(kept) == 1_000_000
    assert seen.count(1) >= 50
    assert seen.count(2) <= seen.count(1) // FULL_COLLECTION_EVERY + 1
