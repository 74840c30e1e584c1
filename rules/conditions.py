"""The elementary tests the rules are built from, each a small physical statement about a use.

A condition takes the use, the home context (its appliance cycles) and the thresholds, and
returns whether it holds together with a short human-readable account using the measured value,
so a decision can explain itself ("close rise 0.021 s <= 0.060 s: a solenoid").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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
    """What the rules know about the rest of the home.

    ``cycle_of`` maps each solenoid fill to its appliance cycle; ``toilet_drop_kpa`` is the
    median drop of the toilet refills (None until there are enough), the home's reference for
    turning pressure drops into flows.
    """

    cycle_of: dict[str, Cycle]
    toilet_drop_kpa: float | None = None


Check = tuple[bool, str]
Condition = Callable[[UseView, Context, RuleConfig], Check]


def _is_solenoid(view: UseView, config: RuleConfig) -> bool:
    rise, ratio, surge = view.close_rise_s, view.close_surge_ratio, view.close_surge_kpa
    return (
        rise is not None
        and ratio is not None
        and surge is not None
        and rise <= config.solenoid_max_rise_s
        and ratio >= config.solenoid_min_surge_ratio
        and surge >= config.solenoid_min_surge_kpa
    )


def is_fill(view: UseView, config: RuleConfig) -> bool:
    """A paired use that closed like a solenoid and lasted no longer than an appliance fill."""
    duration = view.duration_s
    return (
        view.use.status is UseStatus.PAIRED
        and duration is not None
        and duration <= config.fill_max_s
        and _is_solenoid(view, config)
    )


def build_context(views: Sequence[UseView], config: RuleConfig) -> Context:
    """The appliance cycles and the toilet flow reference of a home's uses."""
    refills = [v.drop_kpa for v in views if is_refill(v, config)]
    return Context(find_cycles(views, config).cycle_of, toilet_reference(refills, config))


def is_refill(view: UseView, config: RuleConfig) -> bool:
    """A cold-only use that shut slowly and lasted a cistern refill: the flow reference."""
    return all(
        CONDITIONS[name](view, _EMPTY, config)[0]
        for name in ("slow_close", "cold_only", "toilet_length")
    )


def toilet_reference(refill_drops: Sequence[float], config: RuleConfig) -> float | None:
    """The median refill drop, once there are ``min_reference_uses`` refills (else None)."""
    if len(refill_drops) < config.min_reference_uses:
        return None
    return float(np.median(refill_drops))


def fills_linked(previous: UseView, view: UseView, config: RuleConfig) -> bool:
    """Whether ``view`` (the next fill in time) continues ``previous``'s appliance cycle."""
    end = previous.use.t_close or previous.use.t
    return (view.use.t - end).total_seconds() <= config.appliance_gap_s


def make_cycle(group: Sequence[UseView]) -> Cycle:
    """The cycle of consecutive linked fills (in time order)."""
    end = group[-1].use.t_close or group[-1].use.t
    return Cycle(
        use_ids=tuple(v.use.use_id for v in group),
        span_s=(end - group[0].use.t).total_seconds(),
        lines=frozenset(line for v in group for line in v.lines),
    )


def find_cycles(views: Sequence[UseView], config: RuleConfig) -> Context:
    """Group the home's solenoid fills into cycles: fills separated by at most the gap."""
    fills = sorted((v for v in views if is_fill(v, config)), key=lambda v: (v.use.t, v.use.use_id))
    groups: list[list[UseView]] = []
    for view in fills:
        if groups and fills_linked(groups[-1][-1], view, config):
            groups[-1].append(view)
            continue
        groups.append([view])
    cycle_of: dict[str, Cycle] = {}
    for group in groups:
        cycle = make_cycle(group)
        for view in group:
            cycle_of[view.use.use_id] = cycle
    return Context(cycle_of)


def flow_boundary(reference: float | None, config: RuleConfig) -> float | None:
    """Where a mixed draw's drop turns from a shower's into a bathtub's, given the reference."""
    return _mixed_flow_boundary(Context({}, reference), config)


_EMPTY = Context({})


def _duration(view: UseView) -> float | None:
    return view.duration_s if view.use.status is UseStatus.PAIRED else None


def solenoid_close(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    rise, ratio = view.close_rise_s, view.close_surge_ratio
    if rise is None or ratio is None:
        return False, "no close seen"
    ok = _is_solenoid(view, config)
    return ok, (
        f"close rise {rise:.3f} s (solenoid <= {config.solenoid_max_rise_s:.3f} s), hammer "
        f"{view.close_surge_kpa:.1f} kPa = {ratio:.1f} x the step (solenoid >= "
        f"{config.solenoid_min_surge_kpa:.0f} kPa and {config.solenoid_min_surge_ratio:.1f} x): "
        f"{'a' if ok else 'not a'} solenoid"
    )


def manual_close(view: UseView, ctx: Context, config: RuleConfig) -> Check:
    rise = view.close_rise_s
    if rise is None:
        return False, "no close seen"
    ok = not _is_solenoid(view, config) and rise < config.slow_close_min_rise_s
    return ok, (
        f"close rise {rise:.3f} s, not a solenoid and < {config.slow_close_min_rise_s:.3f} s: "
        f"{'a hand' if ok else 'not a hand'}"
    )


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


def _mixed_flow_boundary(ctx: Context, config: RuleConfig) -> float | None:
    """Drop (summed over both lines) between a shower's and a bathtub's mixed draw.

    The drop grows with flow squared; a toilet refill draws its rated flow on one line, so a
    mixed draw of flow Q drops about ``mixed_drop_factor * toilet_drop * (Q / Q_toilet)^2``
    summed over its two lines. The boundary is at the geometric mean of the two rated flows.
    """
    if ctx.toilet_drop_kpa is None:
        return None
    q_toilet = config.flow_lpm.get("toilet")
    q_shower, q_tub = config.flow_lpm.get("shower"), config.flow_lpm.get("bathtub")
    if q_toilet is None or q_shower is None or q_tub is None:
        return None
    q_mid_sq = q_shower * q_tub
    return config.mixed_drop_factor * ctx.toilet_drop_kpa * q_mid_sq / q_toilet**2


def _ring_distance(view: UseView, category: str, config: RuleConfig) -> float | None:
    """Mean over the use's ringing events of the log distance between the measured ring and
    the nearest a/4L of ``category``'s runs on that event's line (None when nothing to compare).

    Rings below 2 Hz are the analysis band's edge (no ringing found) and are skipped.
    """
    distances = []
    for line, f in view.features_by_line():
        expected = config.ring_hz.get(f"{category}/{line}", ())
        if f.ring_hz >= 2.0 and expected:
            distances.append(min(abs(float(np.log(f.ring_hz / e))) for e in expected))
    return float(np.mean(distances)) if distances else None


#: Two fixtures' runs must fit the rings this differently (log units, ~4 %) to tell them apart:
#: the wave speed shifts by a few percent with water temperature and trapped air.
_RING_MARGIN = 0.04


def _mixer_is(category: str, other: str) -> Condition:
    """The mixed draw is ``category``'s, not ``other``'s: trivially when ``other`` has no
    mixing valve in this home; else by the pipe ring when one run matches and the other does
    not; else by flow against the toilet-referenced boundary."""

    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        if not (config.has(other) and other in config.mixing_categories):
            return True, f"the home has no mixing {other}"
        mine, theirs = (_ring_distance(view, c, config) for c in (category, other))
        tolerance = np.log1p(config.ring_tolerance)
        if (
            mine is not None
            and theirs is not None
            and min(mine, theirs) <= tolerance
            and abs(mine - theirs) >= _RING_MARGIN
        ):
            ok = mine < theirs
            return ok, (
                f"rings fit the {category if ok else other} pipe runs "
                f"({np.expm1(min(mine, theirs)):.0%} off their a/4L, the "
                f"{other if ok else category} runs {np.expm1(max(mine, theirs)):.0%})"
            )
        boundary = _mixed_flow_boundary(ctx, config)
        if boundary is None:
            return False, f"no flow reference yet to tell a {category} from a {other}"
        drop = view.drop_kpa
        high = drop >= boundary
        ok = high == (config.flow_lpm[category] > config.flow_lpm[other])
        side = ">=" if high else "<"
        return ok, (
            f"drop {drop:.1f} kPa {side} {boundary:.1f} kPa (between {category} and {other} "
            f"flows, from the toilet refills): {'a' if ok else 'not a'} {category}"
        )

    check.__name__ = f"mixer_is_{category}"
    return check


def _ring_fits(category: str) -> Condition:
    """No other fixture category of the home fits the use's rings decisively better than
    ``category`` does (passes when the rings cannot be compared)."""

    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        mine = _ring_distance(view, category, config)
        if mine is None:
            return True, f"no ring to compare with the {category} pipe runs"
        tolerance = np.log1p(config.ring_tolerance)
        for other in sorted(config.categories - {category}):
            theirs = _ring_distance(view, other, config)
            if theirs is not None and theirs <= tolerance and theirs + _RING_MARGIN <= mine:
                return False, (
                    f"rings fit the {other} pipe runs ({np.expm1(theirs):.0%} off) better than "
                    f"the {category} runs ({np.expm1(mine):.0%} off)"
                )
        return True, f"no other fixture's pipe runs fit the rings better ({np.expm1(mine):.0%} off)"

    check.__name__ = f"ring_fits_{category}"
    return check


def _ring_prefers(category: str, other: str) -> Condition:
    """The rings fit ``category``'s pipe runs decisively better than ``other``'s."""

    def check(view: UseView, ctx: Context, config: RuleConfig) -> Check:
        mine, theirs = (_ring_distance(view, c, config) for c in (category, other))
        if mine is None or theirs is None:
            return False, f"no ring to tell a {category} from a {other}"
        ok = mine <= np.log1p(config.ring_tolerance) and mine + _RING_MARGIN <= theirs
        return ok, (
            f"rings {'fit' if ok else 'do not decisively fit'} the {category} pipe runs "
            f"({np.expm1(mine):.0%} off) against the {other} runs ({np.expm1(theirs):.0%} off)"
        )

    check.__name__ = f"ring_prefers_{category}_to_{other}"
    return check


ring_fits_washing_machine = _ring_fits("washing_machine")
ring_fits_dishwasher = _ring_fits("dishwasher")

mixer_is_shower = _mixer_is("shower", "bathtub")
mixer_is_bathtub = _mixer_is("bathtub", "shower")

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
    "ring_fits_washing_machine": ring_fits_washing_machine,
    "ring_fits_dishwasher": ring_fits_dishwasher,
    "ring_prefers_dishwasher": _ring_prefers("dishwasher", "washing_machine"),
    "mixer_is_shower": mixer_is_shower,
    "mixer_is_bathtub": mixer_is_bathtub,
    "home_without_dishwasher": home_without_dishwasher,
    "home_without_washing_machine": home_without_washing_machine,
}
