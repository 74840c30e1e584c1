"""Week-1 announcements in the engine when uses arrive one by one, as the live service feeds them.

The live pipeline ingests each use once it is complete (so a short use that started later is
ingested before a long one that started first) and gives the engine each announcement when the
homeowner makes it (so a later announcement can arrive before an earlier one's use is stored).
The benchmark ingests a day at a time and announces everything up front, which hid both.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from atlas.checklist import Announcement
from atlas.engine import CalibrationEngine
from atlas.events import Event
from atlas.uses import UseStatus, WaterUse
from simulator.generate import generate_run
from simulator.presets import load_preset


@pytest.fixture(scope="module")
def home():
    """The apartment spec, its install time and one real transient per line as a template."""
    spec = load_preset("apartment")
    sim = generate_run(spec, days=1, seed=3)
    template = {}
    for s in sim:
        template.setdefault(s.event.line, s.event)
    tz = ZoneInfo(spec.model.timezone)
    installed = datetime.combine(sim[0].event.t.astimezone(tz).date(), time(0), tz)
    return spec, installed, template


class _Feed:
    """Builds uses (with their events) at given minutes after ``t0`` and ingests them one by one."""

    def __init__(self, home) -> None:
        self.spec, installed, self.template = home
        self.t0 = installed + timedelta(hours=8)
        self.engine = CalibrationEngine(self.spec, installed)
        self.events: dict[str, list[Event]] = {}
        self.uses: dict[str, WaterUse] = {}

    def use(self, uid: str, lines: tuple[str, ...], open_min: float, close_min: float) -> None:
        t_open, t_close = (self.t0 + timedelta(minutes=m) for m in (open_min, close_min))
        evs = [
            replace(self.template[line], event_id=f"{uid}-{kind}-{line}", t=t)
            for kind, t in (("open", t_open), ("close", t_close))
            for line in lines
        ]
        self.events[uid] = evs
        self.uses[uid] = WaterUse(
            f"u-{uid}",
            self.spec.home_id,
            lines,
            t_open,
            t_close,
            UseStatus.PAIRED,
            tuple(e.event_id for e in evs if "-open-" in e.event_id),
            tuple(e.event_id for e in evs if "-close-" in e.event_id),
        )

    def announce(self, fixture: str, valve: str | None, minutes: float) -> None:
        at = self.t0 + timedelta(minutes=minutes)
        self.engine.announce(Announcement(fixture, valve, at), at)  # as the pipeline does

    def ingest(self, uid: str) -> None:
        use = self.uses[uid]
        self.engine.ingest([use], self.events[uid], use.t)  # now = the use, as the pipeline does

    def labels(self) -> dict[str, str]:
        return {r.use_id: r.label for r in self.engine.labels if r.source == "guided"}


def test_a_later_announcement_keeps_an_earlier_one_whose_use_is_not_stored_yet(home):
    feed = _Feed(home)
    feed.use("sink", ("cold",), 1, 1.5)
    feed.use("toilet", ("cold",), 31, 31.7)
    feed.use("later", ("hot",), 60, 60.5)
    feed.announce("kitchen-sink", "cold", 0)
    feed.announce("toilet", None, 30)  # said before the sink's use reached the engine
    for uid in ("sink", "toilet", "later"):
        feed.ingest(uid)
    assert feed.labels() == {"u-sink": "kitchen-sink/cold", "u-toilet": "toilet/fill"}


def test_the_use_that_started_first_gets_the_label_not_the_one_ingested_first(home):
    feed = _Feed(home)
    feed.use("toilet", ("cold",), 1, 1.7)  # starts first, ends last
    feed.use("sink", ("cold",), 1.3, 1.5)  # same lines, complete (ingested) first
    feed.use("later", ("hot",), 15, 15.5)
    feed.announce("toilet", None, 0)
    for uid in ("sink", "toilet", "later"):
        feed.ingest(uid)
    assert feed.labels() == {"u-toilet": "toilet/fill"}


def test_a_long_use_started_in_the_window_is_still_matched_once_complete(home):
    feed = _Feed(home)
    feed.use("shower", ("cold", "hot"), 1, 20)
    feed.use("flush", ("cold",), 11, 11.7)  # starts after the window, ends before the shower
    feed.announce("shower", None, 0)
    feed.ingest("flush")
    feed.ingest("shower")
    assert feed.labels() == {"u-shower": "shower/mixed"}


def test_an_unmatched_announcement_is_dropped_after_its_window_and_grace(home):
    feed = _Feed(home)
    feed.use("hot", ("hot",), 5, 5.5)  # not the announced valve's lines
    feed.use("next-day", ("hot",), 24 * 60, 24 * 60 + 1)
    feed.announce("kitchen-sink", "cold", 0)
    feed.ingest("hot")
    assert len(feed.engine.snapshot()["announcements"]) == 1  # within the grace
    feed.ingest("next-day")
    assert feed.labels() == {}
    assert feed.engine.snapshot()["announcements"] == []
