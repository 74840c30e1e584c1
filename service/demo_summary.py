"""The table ``atlas demo`` ends with: what the service showed beside what the truth allowed.

Per week (per day with ``--verbose``): labels, the level shown, the level the truth allows, and
per level the service's estimate with its lower bound next to the TRUE accuracy of the uses of
the 7 days before the row's end (their latest classification by then against the simulator's
truth). Everything here is read from the database and the HTTP API after the run, as of service
instants, so two runs on the same seeds print the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Engine, func, select

from service.storage.homestatus import LEVEL_NAMES
from service.storage.schema import classifications, events, label_requests, labels, uses
from service.storage.stats import db_stats

if TYPE_CHECKING:
    from service.demo import SimulatedHome

LEVELS = ("category", "fixture", "valve")
#: Uses scored per row: those of the days before its end, as the display goals are meant.
TRAILING = timedelta(days=7)
#: A row is read as of an hour after its end: the daily update at 00:05 reports the day that
#: ended (its level applies to the next day, so week 1's row can already show more than rules).
SEEN_AFTER = timedelta(hours=1)


def summary_rows(
    db: Engine, api: httpx.Client, home: SimulatedHome, days_per_row: int
) -> list[dict]:
    """One row per ``days_per_row`` days (7: weeks, 1: days); the module docstring says what."""
    # imported here: atlas.levels pulls in scipy (a second), which `atlas --help` and the other
    # commands that build the demo's parser should not pay for
    from atlas.levels import level_allowed_by

    home_id = home.spec.home_id
    acc = api.get(f"/v1/homes/{home_id}/accuracy", params={"limit": 10000}).raise_for_status()
    estimates = acc.json()["data"]
    timeline = acc.json()["timeline"]
    truth = home.truth_of_event()
    with db.connect() as conn:
        use_t = {
            r.use_id: r._mapping["t"]
            for r in conn.execute(select(uses.c.use_id, uses.c.t).where(uses.c.home_id == home_id))
            if r.use_id[2:] in truth
        }
        cls_rows = conn.execute(
            select(
                classifications.c.use_id,
                classifications.c.level,
                classifications.c.label,
                classifications.c.created_at,
            )
            .where(classifications.c.home_id == home_id)
            .order_by(classifications.c.created_at, classifications.c.id)
        ).all()
        label_rows = conn.execute(
            select(labels.c.source, labels.c.answered_at).where(labels.c.home_id == home_id)
        ).all()
    rows = []
    name = "week" if days_per_row == 7 else "day"
    n_rows = -(-home.days // days_per_row)
    for i in range(1, n_rows + 1):
        end = min(home.installed + timedelta(days=days_per_row * i), home.end)
        seen_by = end + SEEN_AFTER
        window = [u for u, t in use_t.items() if max(home.installed, end - TRAILING) <= t < end]
        latest: dict[tuple[str, str], str] = {}
        for r in cls_rows:
            if r.created_at > seen_by:
                break
            latest[(r.use_id, r.level)] = r.label
        levels, fractions = {}, {}
        for level in LEVELS:
            est = [
                x
                for x in estimates
                if x["level"] == level and datetime.fromisoformat(x["t"]) <= seen_by
            ]
            # as the calibration bench scores it: a use not classified at this level (no model
            # yet) counts as not correct
            correct = sum(latest.get((u, level)) == str(truth[u[2:]][level]) for u in window)
            last = est[-1] if est and est[-1]["n_labels"] > 0 else None  # no labels: no estimate
            fractions[level] = correct / len(window) if window else None
            levels[level] = {
                "estimate": None if last is None else round(last["estimate"], 3),
                "lower_bound": None if last is None else round(last["lower_bound"], 3),
                "n_labels": 0 if last is None else last["n_labels"],
                "true_accuracy": round(correct / len(window), 3) if window else None,
                "n_uses": len(window),
            }
        shown = [c["level"] for c in timeline if datetime.fromisoformat(c["t"]) <= seen_by]
        decided_on = (end - home.installed).days + 1  # the daily update just after the row
        rows.append(
            {
                name: i,
                "end": end.isoformat(),
                "labels": sum(1 for s, t in label_rows if s != "guided" and t <= seen_by),
                "guided_labels": sum(1 for s, t in label_rows if s == "guided" and t <= seen_by),
                "level": shown[-1] if shown else LEVEL_NAMES["rule_categories"],
                "truth_allows": LEVEL_NAMES[level_allowed_by(fractions, day=decided_on)],
                "levels": levels,
            }
        )
    return rows


def event_counts(db: Engine, home_id: str) -> dict:
    """Events stored (and distinct ids), dead letters, and label requests by state."""
    with db.connect() as conn:
        stored = conn.execute(
            select(func.count(), func.count(func.distinct(events.c.event_id))).where(
                events.c.home_id == home_id
            )
        ).one()
        states = dict(
            conn.execute(
                select(label_requests.c.state, func.count())
                .where(label_requests.c.home_id == home_id)
                .group_by(label_requests.c.state)
            ).all()
        )
        stats = db_stats(conn)
    return {
        "stored": stored[0],
        "distinct_event_ids": stored[1],
        "dead_letters": stats["dead_letters"],
        "requests": dict(sorted(states.items())),
    }


def format_table(rows: list[dict], name: str) -> list[str]:
    """The rows as text lines (``name``: "week" or "day")."""
    cells = "  ".join(f"{lv:>22}" for lv in LEVELS)
    lines = [
        f"{name:>4}  labels  guided  shown     truth allows  {cells}",
        " " * 46 + "  ".join(f"{'est (lower) / true':>22}" for _ in LEVELS),
    ]
    for row in rows:
        cols = []
        for lv in LEVELS:
            c = row["levels"][lv]
            est = (
                "  -  "
                if c["estimate"] is None
                else f"{c['estimate']:.2f} ({c['lower_bound']:.2f})"
            )
            true = "-" if c["true_accuracy"] is None else f"{c['true_accuracy']:.2f}"
            cols.append(f"{est + ' / ' + true:>22}")
        lines.append(
            f"{row[name]:>4}  {row['labels']:>6}  {row['guided_labels']:>6}  "
            f"{row['level']:<8}  {row['truth_allows']:<12}  " + "  ".join(cols)
        )
    return lines


def print_summary(summary: dict, out: Callable[[str], None]) -> None:
    """The day table (``--verbose``), the week table, events and requests."""
    for name, key in (("day", "per_day"), ("week", "weeks")):
        if key in summary:
            out("")
            for line in format_table(summary[key], name):
                out(line)
    ev = summary["events"]
    out(
        f"\nevents: simulated {ev['simulated']}, published {ev['published']}, acknowledged "
        f"{ev['acknowledged']}, stored {ev['stored']} ({ev['distinct_event_ids']} distinct ids), "
        f"dead letters {ev['dead_letters']}"
    )
    out(f"label requests by state: {summary['requests']}; homeowner: {summary['homeowner']}")
