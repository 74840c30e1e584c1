"""Announcements waiting for their use: "I am about to run the kitchen sink" (guided week).

WHY they wait: an announcement is said before the water runs, and its use is ingested only
once complete (a shower: minutes later), so it is matched against the ingested uses once
they reach the end of its window, and dropped once a use of its window would have been
ingested by then. See :class:`atlas.engine.EngineConfig` (``announcement_window_s``,
``announcement_grace_s``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from atlas.checklist import AnnouncedLabel, Announcement, match_announcement
from atlas.engine.uselog import UseLog
from atlas.homespec import HomeSpec


class PendingAnnouncements:
    """The announcements not matched to a use yet.

    Parameters
    ----------
    window_s : float
        How long after an announcement the announced use may start.
    grace_s : float
        How much longer a use that started in the window may take to be ingested.
    """

    def __init__(self, window_s: float, grace_s: float) -> None:
        self.window = timedelta(seconds=window_s)
        self.keep = timedelta(seconds=window_s + grace_s)
        self.pending: list[Announcement] = []

    def add(self, announcement: Announcement) -> None:
        self.pending.append(announcement)

    def match(
        self, spec: HomeSpec, log: UseLog, asked: Collection[str], now: datetime
    ) -> list[tuple[AnnouncedLabel, datetime]]:
        """Labels for the announcements whose window the ingested uses have passed.

        Each use labels at most one announcement (the earliest first); a use already asked
        about is not labelled again. Matched and expired announcements stop waiting.
        """
        if not self.pending:
            return []
        newest = log.newest_start
        horizon = now if newest is None else max(now, newest)
        # an announced use opens after its announcement (a few seconds of clock slack)
        free = [
            u
            for u in log.since(min(a.at for a in self.pending) - self.window)
            if u.use_id not in asked
        ]
        found_labels, remaining = [], []
        for a in sorted(self.pending, key=lambda a: a.at):
            if a.at + self.window > horizon:  # a use of its window may still be running
                remaining.append(a)
                continue
            found = match_announcement(
                a, spec.fixture(a.fixture_id), free, window_s=self.window.total_seconds()
            )
            if found is None:
                remaining.append(a)
                continue
            found_labels.append((found, a.at))
            free = [u for u in free if u.use_id != found.use_id]
        self.pending = [a for a in remaining if a.at + self.keep >= horizon]
        return found_labels

    def to_list(self) -> list[dict[str, Any]]:
        return [
            {"fixture_id": a.fixture_id, "valve_name": a.valve_name, "at": a.at.isoformat()}
            for a in self.pending
        ]

    def load(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.pending = [
            Announcement(a["fixture_id"], a["valve_name"], datetime.fromisoformat(a["at"]))
            for a in items
        ]
