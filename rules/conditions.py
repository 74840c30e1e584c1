"""The elementary tests the rules are built from, each a small physical statement about a use.

A condition takes the use, the home context (its appliance cycles) and the thresholds, and
returns whether it holds together with a short human-readable account using the measured value,
so a decision can explain itself ("close rise 0.021 s <= 0.060 s: a solenoid").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from atlas.uses import UseStatus
from rules.config import RuleConfig
from rules.view import UseView


@dataclass(frozen=True)
class Cycle:
    """Consecutive solenoid fills close enough in time to be one appliance programme."""

    use_ids: tuple[str, ...]
    span_s: float
    lines: frozenset[str]

    @property
    def n_fills(self) -> int:
        return len(self.use_ids)


@dataclass(frozen=True)
class Context:
    """What the rules know about the rest of the home: the appliance cycle of each fill."""

    cycle_of: dict[str, Cycle]


Check = tuple[bool, str]
Condition = Callable[[UseView, Context, RuleConfig], Check]


def is_fill(view: UseView, config: RuleConfig) -> bool:
    """A paired use that closed like a solenoid and lasted no longer than an appliance fill."""
    rise, duration = view.close_rise_s, view.duration_s
    return (
        view.use.status is UseStatus.PAIRED
        and rise is not None
        and duration is not None
        and rise <= config.solenoid_max_rise_s
        and duration <= config.fill_max_s
    )


def find_cycles(views: Sequence[UseView], config: RuleConfig) -> Context:
    """Group the home's solenoid fills into cycles: fills separated by at most the gap."""
    fills = sorted((v for v in views if is_fill(v, config)), key=lambda v: (v.use.t, v.use.use_id))
    groups: list[list[UseView]] = []
    for view in fills:
        if groups:
            last = groups[-1][-1]
            end = last.use.t_close or last.use.t
            if (view.use.t - end).total_seconds() <= config.appliance_gap_s:
                groups[-1].append(view)
                continue
        groups.append([view])
    cycle_of: dict[str, Cycle] = {}
    for group in groups:
        end = group[-1].use.t_close or group[-1].use.t
        cycle = Cycle(
            use_ids=tuple(v.use.use_id for v in group),
            span_s=(end - group[0].use.t).total_seconds(),
            lines=frozenset(line for v in group for line in v.lines),
        )
        for view in group:
            cycle_of[view.use.use_id] = cycle
    return Context(cycle_of)


def _duration(view: UseView) -> float | None:
    return view.duration_s if view.use.status is UseStatus.PAIRED else None


def solenoid_close(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    rise = view.close_rise_s
    if rise is None:
        return False, "no close seen"
    ok = rise <= config.solenoid_max_rise_s
    sign = "<=" if ok else ">"
    return ok, f"close rise {rise:.3f} s {sign} {config.solenoid_max_rise_s:.3f} s (solenoid)"


def manual_close(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    rise = view.close_rise_s
    if rise is None:
        return False, "no close seen"
    lo, hi = config.solenoid_max_rise_s, config.slow_close_min_rise_s
    ok = lo < rise < hi
    return ok, f"close rise {rise:.3f} s {'in' if ok else 'outside'} ({lo:.3f}, {hi:.3f}) s (hand)"


def slow_close(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    rise = view.close_rise_s
    if rise is None:
        return False, "no close seen"
    ok = rise >= config.slow_close_min_rise_s
    sign = ">=" if ok else "<"
    return ok, f"close rise {rise:.3f} s {sign} {config.slow_close_min_rise_s:.3f} s (float)"


def _lines_are(wanted: frozenset[str], label: str) -> Condition:
    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        ok = view.lines == wanted
        return ok, f"lines {'+'.join(view.use.lines)} {'are' if ok else 'are not'} {label}"

    check.__name__ = label.replace(" ", "_")
    return check


hot_only = _lines_are(frozenset({"hot"}), "hot only")
cold_only = _lines_are(frozenset({"cold"}), "cold only")
both_lines = _lines_are(frozenset({"hot", "cold"}), "hot and cold")


def _duration_between(low_attr: str | None, high_attr: str, label: str) -> Condition:
    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        duration = _duration(view)
        if duration is None:
            return False, "no duration (not a paired use)"
        low = getattr(config, low_attr) if low_attr else 0.0
        high = getattr(config, high_attr)
        ok = low <= duration <= high
        where = "within" if ok else "outside"
        return ok, f"duration {duration:.0f} s {where} [{low:.0f}, {high:.0f}] s ({label})"

    check.__name__ = label.replace(" ", "_")
    return check


fill_length = _duration_between(None, "fill_max_s", "appliance fill")
shower_length = _duration_between("shower_min_s", "shower_max_s", "shower")
toilet_length = _duration_between("toilet_min_s", "toilet_max_s", "cistern refill")
short_draw = _duration_between(None, "faucet_max_s", "faucet draw")


def appliance_cycle(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    cycle = ctx.cycle_of.get(view.use.use_id)
    if cycle is None:
        return False, "not a solenoid fill"
    ok = cycle.n_fills >= config.appliance_min_fills and cycle.span_s <= config.appliance_max_span_s
    return ok, (
        f"one of {cycle.n_fills} solenoid fills over {cycle.span_s / 60:.0f} min "
        f"({'a' if ok else 'not an'} appliance cycle: >= {config.appliance_min_fills} fills "
        f"within {config.appliance_max_span_s / 3600:.1f} h)"
    )


def cycle_draws_cold(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    cycle = ctx.cycle_of.get(view.use.use_id)
    ok = cycle is not None and "cold" in cycle.lines
    return ok, f"the cycle {'draws' if ok else 'does not draw'} cold water"


def cycle_hot_only(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    cycle = ctx.cycle_of.get(view.use.use_id)
    ok = cycle is not None and cycle.lines == frozenset({"hot"})
    return ok, f"the cycle {'draws only' if ok else 'does not draw only'} hot water"


def _home_lacks(category: str) -> Condition:
    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        ok = not config.has(category)
        return ok, f"the home {'has no' if ok else 'has a'} {category.replace('_', ' ')}"

    check.__name__ = f"home_without_{category}"
    return check


home_without_dishwasher = _home_lacks("dishwasher")
home_without_washing_machine = _home_lacks("washing_machine")

#: Every condition by the name rules refer to it with.
CONDITIONS: dict[str, Condition] = {
    "solenoid_close": solenoid_close,
    "manual_close": manual_close,
    "slow_close": slow_close,
    "hot_only": hot_only,
    "cold_only": cold_only,
    "both_lines": both_lines,
    "fill_length": fill_length,
    "shower_length": shower_length,
    "toilet_length": toilet_length,
    "short_draw": short_draw,
    "appliance_cycle": appliance_cycle,
    "cycle_draws_cold": cycle_draws_cold,
    "cycle_hot_only": cycle_hot_only,
    "home_without_dishwasher": home_without_dishwasher,
    "home_without_washing_machine": home_without_washing_machine,
}
