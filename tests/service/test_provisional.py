"""The in-memory provisional pairing reports each use once, as the stored pairing forms it,
and keeps only the events that can still change a use; the stored pairing hands its decoded
events and features to the classifier of the same worker."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from atlas.pairing import compute_features, pair_events
from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.intake.provisional import ProvisionalPairer
from service.storage.events import load_events
from service.storage.homes import upsert_home
from service.storage.uses import load_uses
from simulator.generate import generate_run
from simulator.presets import load_preset


def _day(seed: int = 2, days: int = 1):
    spec = load_preset("two_bath_house")
    return spec, [s.event for s in generate_run(spec, days=days, seed=seed)]


def test_each_use_is_reported_once_as_the_full_pairing_forms_it():
    _, events = _day(days=3)
    reports: list[tuple[int, str]] = []  # (index of the event that completed it, use)
    at = [0]
    pairer = ProvisionalPairer(
        lambda home, uses, evs, feats: reports.extend((at[0], u.use_id) for u in uses)
    )
    largest = 0
    for index, event in enumerate(events):  # one by one, as a gateway publishes them
        at[0] = index
        pairer.pair(event.home_id, [event])
        largest = max(largest, pairer.kept_events(event.home_id))
    reported = [use_id for _, use_id in reports]
    assert len(reported) == len(set(reported))  # never twice
    offline = pair_events(events).uses
    assert len(set(reported) & {u.use_id for u in offline}) >= 0.97 * len(offline)
    assert largest <= 12  # only waiting opens and unsettled uses are kept, not the days
    # in real time nearly every use is reported by its own last event, not a later one
    position = {e.event_id: i for i, e in enumerate(events)}
    last = {u.use_id: max(position[i] for i in u.event_ids) for u in offline}
    late = [use_id for index, use_id in reports if use_id in last and index > last[use_id]]
    assert len(late) <= 0.05 * len(reports)


def test_the_thread_reports_what_the_intake_adds():
    _, events = _day(seed=4)
    got: list[str] = []
    done = threading.Event()

    def on_use(home, uses, evs, feats):
        assert {e.event_id for e in evs} == {i for u in uses for i in u.event_ids}
        assert set(feats) >= {e.event_id for e in evs}
        got.extend(u.use_id for u in uses)
        done.set()

    pairer = ProvisionalPairer(on_use)
    pairer.start()
    for i in range(0, len(events), 7):
        pairer.add(events[i : i + 7])
    pairer.stop()  # pairs what was added first
    assert done.is_set() and len(got) == len(set(got)) > 10


def test_stored_pairing_hands_decoded_events_and_features_over_once(sqlite_engine, home_spec):
    sim = generate_run(home_spec, days=1, seed=6)
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    shared: list[str] = []

    def share(home_id, features):  # the provisional pairing's features of exactly stored events
        shared.extend(features)
        intake.pairer.offer_features(home_id, features)

    provisional = ProvisionalPairer(lambda *_: None, share_features=share)
    intake = IngestPipeline(sqlite_engine, clock=None, hand_over=10_000, on_stored=provisional.add)
    msgs = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), s.event.t, 0, 0, 0)
        for s in sim
    ]
    provisional.start()
    try:
        homes = intake.process(msgs).homes
    finally:
        provisional.stop()  # pairs what was added first
    ids = [s.event.event_id for s in sim]
    assert sorted(shared) == sorted(ids)  # i16le-b64 payloads: every event is stored exactly
    intake.pair(homes, final=True)
    handed = intake.pairer.take_paired(home_spec.home_id, ids)
    assert set(handed) == set(ids)  # every event ended in a stored use
    stored = [handed[i][0] for i in ids]  # decoded by the intake, equal to the stored samples
    fresh = compute_features(stored)
    assert all(handed[e.event_id][1] == fresh[e.event_id] for e in stored)
    assert intake.pairer.take_paired(home_spec.home_id, ids) == {}  # once

    plain = IngestPipeline(sqlite_engine, clock=None)  # the default keeps nothing
    plain.pair({home_spec.home_id}, final=True)
    assert plain.pairer.take_paired(home_spec.home_id, ids) == {}


def test_stored_pairing_reports_each_unsettled_use_once(sqlite_engine, home_spec):
    """Several workers: the owner's stored pairing gives the provisional classifications."""
    sim = generate_run(home_spec, days=1, seed=7)
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    told: list[str] = []
    intake = IngestPipeline(
        sqlite_engine,
        clock=None,
        on_unsettled=lambda home, uses, evs, feats: told.extend(u.use_id for u in uses),
    )
    now = datetime.now(UTC)  # arrived just now: a use settles by a later event, not the clock
    msgs = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), now, 0, 0, 0) for s in sim
    ]
    for i in range(0, len(msgs), 3):  # re-paired after every few events, as live
        intake.pair(intake.process(msgs[i : i + 3]).homes)
    assert len(told) == len(set(told)) > 10


def test_stored_pairing_loads_only_the_events_not_offered_exactly(
    sqlite_engine, home_spec, monkeypatch
):
    """The intake's decoded events spare the pairing a load, and change none of its uses."""
    import service.intake.pairing_step as pairing_step

    sim = generate_run(home_spec, days=1, seed=6)
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    loaded: list[str] = []
    real_load = pairing_step.load_events

    def counting_load(conn, event_ids, home_id):
        found = real_load(conn, event_ids, home_id)
        loaded.extend(e.event_id for e in found)
        return found

    monkeypatch.setattr(pairing_step, "load_events", counting_load)
    # json payloads are quantised when stored: only the database has their samples
    as_json = {s.event.event_id for s in sim[::5]}
    msgs = [
        InboundMessage(
            s.event.topic(),
            json.dumps(s.payload("json" if s.event.event_id in as_json else "i16le-b64")).encode(),
            s.event.t,
            0,
            0,
            0,
        )
        for s in sim
    ]
    intake = IngestPipeline(sqlite_engine, clock=None)
    for i in range(0, len(msgs), 25):
        intake.pair(intake.process(msgs[i : i + 25]).homes)
    intake.pair({home_spec.home_id}, final=True)
    assert set(loaded) == as_json
    with sqlite_engine.connect() as conn:
        stored_uses = {u.use_id: set(u.event_ids) for u in load_uses(conn, home_spec.home_id)}
        offline = pair_events(load_events(conn, [s.event.event_id for s in sim]))
    assert stored_uses == {u.use_id: set(u.event_ids) for u in offline.uses}
