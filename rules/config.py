"""The rule thresholds, as named data with the physics behind each, and per-home tuning.

Every number the rules compare against lives here, so a reviewer can check each one against its
reason and an installer can tune a home without touching code. :meth:`RuleConfig.from_home_spec`
switches rules off for categories the home does not have (no dishwasher, no dishwasher rule) and
narrows the valve-timing thresholds to the closures the spec declares.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from atlas.domain import Category, ClosureKind
from atlas.homespec import HomeSpec

ALL_CATEGORIES: frozenset[str] = frozenset(str(c) for c in Category)


@dataclass(frozen=True)
class RuleConfig:
    """Named thresholds of the rule classifier (seconds, kPa).

    Attributes
    ----------
    categories : frozenset of str
        Categories present in the home; rules for any other category never fire.
    solenoid_max_rise_s : float
        A close whose pressure rises (10-90 %) faster than this was a solenoid. Solenoids shut in
        10-50 ms; a hand on a handle takes 0.1-1 s and a toilet float 1-5 s.
    slow_close_min_rise_s : float
        A close slower than this was a float valve: hands rarely take more than half a second,
        a float shuts over seconds as the tank fills.
    appliance_gap_s : float
        Solenoid fills of one appliance cycle follow each other within this gap: a wash, rinse
        and spin cycle separates fills by 5-30 minutes.
    appliance_min_fills : int
        An appliance cycle has at least this many fills (dishwashers ~4 over 90 min, washing
        machines ~4 over 100 min); a lone solenoid close may be anything (a fridge, an
        irrigation valve).
    appliance_max_span_s : float
        A cycle lasts at most this long (a long washing-machine programme is ~2.5 h).
    fill_max_s : float
        An appliance fill lasts at most this long: a dishwasher takes ~4 l, a washing machine
        15-20 l at 6-12 l/min.
    shower_min_s : float
        A shower runs for several minutes (mean ~8 min); a basin or sink draw rarely exceeds a
        minute or two.
    shower_max_s : float
        Beyond this a long mixed draw is more likely a bath fill or a tap left running.
    toilet_min_s / toilet_max_s : float
        A toilet cistern refills in 0.5-4 minutes depending on tank size and pressure.
    faucet_max_s : float
        A hand-wash, a glass of water, rinsing a dish: faucet draws are short.
    min_precision : float
        A rule whose measured precision is below this says "unknown" instead of guessing.
    """

    categories: frozenset[str] = ALL_CATEGORIES
    solenoid_max_rise_s: float = 0.06
    slow_close_min_rise_s: float = 0.5
    appliance_gap_s: float = 40 * 60.0
    appliance_min_fills: int = 2
    appliance_max_span_s: float = 3 * 3600.0
    fill_max_s: float = 6 * 60.0
    shower_min_s: float = 3 * 60.0
    shower_max_s: float = 30 * 60.0
    toilet_min_s: float = 30.0
    toilet_max_s: float = 4 * 60.0
    faucet_max_s: float = 90.0
    min_precision: float = 0.8
    disabled_rules: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.categories) - ALL_CATEGORIES)
        if unknown:
            raise ValueError(f"categories contains unknown categories {unknown}.")
        for name in (
            "solenoid_max_rise_s",
            "slow_close_min_rise_s",
            "appliance_gap_s",
            "appliance_max_span_s",
            "fill_max_s",
            "shower_min_s",
            "shower_max_s",
            "toilet_min_s",
            "toilet_max_s",
            "faucet_max_s",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}={value} should be > 0.")
        if self.appliance_min_fills < 1:
            raise ValueError(f"appliance_min_fills={self.appliance_min_fills} should be >= 1.")
        if not 0 <= self.min_precision <= 1:
            raise ValueError(f"min_precision={self.min_precision} should be in [0, 1].")
        if self.solenoid_max_rise_s >= self.slow_close_min_rise_s:
            raise ValueError(
                f"solenoid_max_rise_s={self.solenoid_max_rise_s} should be < "
                f"slow_close_min_rise_s={self.slow_close_min_rise_s}."
            )
        if self.shower_min_s >= self.shower_max_s:
            raise ValueError(
                f"shower_min_s={self.shower_min_s} should be < shower_max_s={self.shower_max_s}."
            )
        if self.toilet_min_s >= self.toilet_max_s:
            raise ValueError(
                f"toilet_min_s={self.toilet_min_s} should be < toilet_max_s={self.toilet_max_s}."
            )

    def has(self, category: str) -> bool:
        return category in self.categories

    @classmethod
    def from_home_spec(cls, spec: HomeSpec, **overrides: object) -> RuleConfig:
        """The default thresholds restricted to the categories and closures of ``spec``.

        The categories are those of the spec's fixtures. When the spec declares solenoid
        closure times, a solenoid close is allowed up to twice the slowest declared one (the
        pipe blurs the front); when it declares float valves, a slow close starts at half the
        fastest declared float time. Keyword ``overrides`` replace any field afterwards.
        """
        categories = frozenset(str(f.category) for f in spec.fixtures)
        config = cls(categories=categories)
        closures = [v.closure for v in spec.valves]
        solenoid = [c.time_s for c in closures if c.kind is ClosureKind.SOLENOID]
        floats = [c.time_s for c in closures if c.kind is ClosureKind.FLOAT]
        changes: dict[str, object] = {}
        if solenoid:
            changes["solenoid_max_rise_s"] = max(config.solenoid_max_rise_s, 2 * max(solenoid))
        if floats:
            changes["slow_close_min_rise_s"] = min(config.slow_close_min_rise_s, 0.5 * min(floats))
        changes.update(overrides)
        return replace(config, **changes)
