"""How long the display lags behind what the truth allows: the measure users judge Atlas by.

A home's *oracle day* for a display level is the first day (from day 8, the first day past
week 1) whose trailing-7-day true accuracy meets that level's goals and every coarser level's.
The *shown day* is the first day the display level was that level or finer. The lag is their
difference; a level never shown counts as shown the day after the last simulated day, and a
home whose truth never allows the level has no lag (it cannot be late for it).

Days are those of the replay's daily rows: row ``d`` is the end of day ``d``, whose decision
is what the homeowner sees during day ``d + 1``. So "shown by day 15" reads row 14.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from atlas.levels import DISPLAY_LEVELS, LevelPolicy, level_allowed_by

#: The days at which the share of homes showing / allowed a level is reported (start of day).
REPORT_DAYS: tuple[int, ...] = (8, 15, 22, 29)
FIRST_DAY = LevelPolicy().first_full_day
PROMOTED_LEVELS: tuple[str, ...] = DISPLAY_LEVELS[1:]


def _shows(level_shown: str, level: str) -> bool:
    return DISPLAY_LEVELS.index(level_shown) >= DISPLAY_LEVELS.index(level)


def home_promotion(days: Sequence[Mapping]) -> dict[str, dict]:
    """Per promoted level: ``oracle_day``, ``shown_day`` and ``lag_days`` (None: no oracle day).

    ``days``: the replay's daily rows (``day``, ``level``, ``window`` true accuracies).
    """
    last = max(d["day"] for d in days)
    rows = [d for d in days if d["day"] >= FIRST_DAY]
    out = {}
    for level in PROMOTED_LEVELS:
        oracle = next((d["day"] for d in rows if _allowed(d, level)), None)
        shown = next((d["day"] for d in rows if _shows(d["level"], level)), last + 1)
        out[level] = {
            "oracle_day": oracle,
            "shown_day": shown,
            "lag_days": None if oracle is None else shown - oracle,
        }
    return out


def _allowed(row: Mapping, level: str) -> bool:
    """Whether the truth allows ``level`` (or finer) on the row's day."""
    return _shows(level_allowed_by(row["window"], day=row["day"]), level)


def _share_by_day(days_per_home: Sequence[Sequence[Mapping]], test) -> dict[str, float]:
    out = {}
    for day in REPORT_DAYS:
        hits = []
        for days in days_per_home:
            row = next((d for d in days if d["day"] == day - 1), None)
            if row is None:  # a run shorter than the report day: its last row
                row = days[-1]
            hits.append(test(row))
        out[str(day)] = float(np.mean(hits))
    return out


def promotion_summary(days_per_home: Sequence[Sequence[Mapping]]) -> dict[str, dict]:
    """Per promoted level over homes: median lag, and the share of homes showing the level
    (``shown_by_day``) and allowed it by the truth (``oracle_by_day``) at :data:`REPORT_DAYS`.

    The median is over homes with an oracle day (None when no home has one).
    """
    out = {}
    for level in PROMOTED_LEVELS:
        lags = [home_promotion(d)[level]["lag_days"] for d in days_per_home]
        lags = [lag for lag in lags if lag is not None]
        out[level] = {
            "median_lag_days": float(np.median(lags)) if lags else None,
            "homes_with_oracle": len(lags),
            "shown_by_day": _share_by_day(
                days_per_home, lambda r, lv=level: _shows(r["level"], lv)
            ),
            "oracle_by_day": _share_by_day(days_per_home, lambda r, lv=level: _allowed(r, lv)),
        }
    return out


def promotion_lines(name: str, summary: Mapping[str, Mapping]) -> list[str]:
    """Markdown rows of one strategy (or variant): lag and shown / allowed shares by day."""
    lines = []
    for level, s in summary.items():
        lag = "-" if s["median_lag_days"] is None else f"{s['median_lag_days']:g}"
        by_day = " | ".join(
            f"{s['shown_by_day'][d]:.0%} / {s['oracle_by_day'][d]:.0%}" for d in s["shown_by_day"]
        )
        lines.append(f"| {name} | {level} | {lag} ({s['homes_with_oracle']} homes) | {by_day} |")
    return lines


def promotion_table(summaries: Mapping[str, Mapping[str, Mapping]]) -> str:
    """One markdown table: per strategy and level, the median lag and shown / allowed shares."""
    head = " | ".join(f"day {d} shown / allowed" for d in REPORT_DAYS)
    lines = [
        f"| strategy | level | median lag, days (homes with an oracle day) | {head} |",
        "|---|---|---|" + "---|" * len(REPORT_DAYS),
    ]
    for name, summary in summaries.items():
        lines += promotion_lines(name, summary)
    return "\n".join(lines)


def plot_promotion(
    days_by_name: Mapping[str, Sequence[Sequence[Mapping]]], out: Path
) -> list[Path]:
    """Per level, by day: the share of homes showing it (solid) and allowed it (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for level in PROMOTED_LEVELS:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, homes in days_by_name.items():
            day_axis = [d["day"] + 1 for d in homes[0]]
            shown = np.mean([[_shows(d["level"], level) for d in h] for h in homes], axis=0)
            allowed = np.mean([[_allowed(d, level) for d in h] for h in homes], axis=0)
            (line,) = ax.step(day_axis, shown, where="post", label=f"{name} shown")
            ax.step(
                day_axis,
                allowed,
                "--",
                where="post",
                color=line.get_color(),
                label=f"{name} allowed by the truth",
            )
        ax.set(
            xlabel="day",
            ylabel="share of homes",
            ylim=(-0.02, 1.02),
            title=f"{level} level or finer: shown vs allowed",
        )
        ax.legend(fontsize=7, loc="upper left")
        path = out / f"promotion_{level}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
