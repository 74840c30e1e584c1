"""The rule thresholds, as named data with the physics behind each, and per-home tuning.

Every number the rules compare against lives here, so a reviewer can check each one against its
reason and an installer can tune a home without touching code. :meth:`RuleConfig.from_home_spec`
switches rules off for categories the home does not have (no dishwasher, no dishwasher rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from atlas.domain import Category
from atlas.homespec import DEFAULT_FLOW_LPM, HomeSpec

ALL_CATEGORIES: frozenset[str] = frozenset(str(c) for c in Category)

#: Pressure-wave speed in water-filled pipe (m/s), Wylie & Streeter "Fluid Transients" table 2.1:
#: copper ~1300, CPVC ~550, PEX 270-350. Only ratios between a home's runs matter to the ring rule.
WAVE_SPEED_M_S: dict[str, float] = {"copper": 1300.0, "cpvc": 550.0, "pex": 300.0}


@dataclass(frozen=True)
class RuleConfig:
    """Named thresholds of the rule classifier (seconds, kPa).

    Attributes
    ----------
    categories : frozenset of str
        Categories present in the home; rules for any other category never fire.
    solenoid_max_rise_s : float
        A solenoid close rises (10-90 %) faster than this. Solenoids shut in 10-50 ms and, as
        valves cut most of the flow in the last part of their stroke, the level jumps within a
        few milliseconds; a hand on a handle takes 0.1-1 s and a toilet float 1-5 s.
    solenoid_min_surge_ratio : float
        A solenoid close's water-hammer spike is at least this many times its level step:
        Joukowsky's surge is full when the closure is shorter than the pipe's round trip, while
        a hand's slower closure divides it by (closure time / round trip). Dimensionless, so it
        holds whatever the home's pressure and pipes.
    solenoid_min_surge_kpa : float
        ... and the spike is at least this large: tens of kPa reach the sensor even through an
        appliance's hose, while a hand's closure, spread over many round trips, leaves a few.
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
    mixing_categories : frozenset of str
        Categories with a valve that draws hot and cold at once (a mixer, a single lever): only
        they can make a both-lines use. A two-handle tub cannot be mistaken for a mixer shower.
    flow_lpm : dict of str to float
        Rated flow of each category (the spec's mean over its valves): a bathtub spout runs about
        twice a shower head, so the pressure drop (which grows with flow squared) tells them
        apart once the home's drop-per-flow is known from its toilet refills.
    mixed_drop_factor : float
        Summed over both lines, a mixed draw of flow Q drops about this times what a toilet
        refill of flow Q drops on the cold line: each line carries half the flow through its
        own branch ((Q/2)^2 twice: 0.5), but the shared main carries all of it and is felt on
        both lines (up to 2). Measured on the calibration seeds (docs/rules.md).
    ring_hz : dict of str to tuple of float
        Expected quarter-wave ringing a/4L of each category's pipe runs, keyed
        ``"<category>/<line>"``, from the spec's pipe materials and lengths: the ring of a
        transient names the pipe run it travelled, so it tells two fixtures apart when their
        runs differ (copper rings fast, PEX slowly, long runs lower).
    ring_tolerance : float
        A measured ring within this relative distance of a run's a/4L matches it: the wave
        speed and length an installer writes are a few percent off.
    min_reference_uses : int
        Toilet refills needed before their median drop is trusted as the home's flow reference.
    disabled_rules : frozenset of str
        Rules switched off by name (an installer's override).
    """

    categories: frozenset[str] = ALL_CATEGORIES
    solenoid_max_rise_s: float = 0.015
    solenoid_min_surge_ratio: float = 4.0
    solenoid_min_surge_kpa: float = 15.0
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
    mixing_categories: frozenset[str] = ALL_CATEGORIES
    flow_lpm: dict[str, float] = field(
        default_factory=lambda: {str(c): v for c, v in DEFAULT_FLOW_LPM.items()}
    )
    mixed_drop_factor: float = 0.75
    ring_hz: dict[str, tuple[float, ...]] = field(default_factory=dict)
    ring_tolerance: float = 0.12
    min_reference_uses: int = 3
    disabled_rules: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("categories", "mixing_categories"):
            unknown = sorted(set(getattr(self, name)) - ALL_CATEGORIES)
            if unknown:
                raise ValueError(f"{name} contains unknown categories {unknown}.")
        bad_flows = {c: v for c, v in self.flow_lpm.items() if not v > 0}
        if bad_flows:
            raise ValueError(f"flow_lpm should be > 0 for every category, got {bad_flows}.")
        for name in (
            "solenoid_max_rise_s",
            "solenoid_min_surge_ratio",
            "solenoid_min_surge_kpa",
            "slow_close_min_rise_s",
            "appliance_gap_s",
            "appliance_max_span_s",
            "fill_max_s",
            "shower_min_s",
            "shower_max_s",
            "toilet_min_s",
            "toilet_max_s",
            "faucet_max_s",
            "mixed_drop_factor",
            "ring_tolerance",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}={value} should be > 0.")
        if self.min_reference_uses < 1:
            raise ValueError(f"min_reference_uses={self.min_reference_uses} should be >= 1.")
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
        """The default thresholds restricted to the categories of ``spec``'s fixtures.

        Rules of absent categories never fire, and alternatives that depend on absence (a
        hot-only appliance cycle is a washing machine when there is no dishwasher) switch on.
        Keyword ``overrides`` replace any field afterwards (an installer's tuning).
        """
        categories = frozenset(str(f.category) for f in spec.fixtures)
        mixing = frozenset(
            str(f.category) for f in spec.fixtures for v in f.valves if len(v.lines) > 1
        )
        flows: dict[str, list[float]] = {}
        for fixture in spec.fixtures:
            for valve in fixture.valves:
                flows.setdefault(str(fixture.category), []).append(valve.flow_lpm)
        flow_lpm = {c: sum(v) / len(v) for c, v in flows.items()}
        rings: dict[str, list[float]] = {}
        for fixture in spec.fixtures:
            for valve in fixture.valves:
                for line, run in valve.runs.items():
                    speed = WAVE_SPEED_M_S[str(run.material)]
                    key = f"{fixture.category}/{line}"
                    rings.setdefault(key, []).append(speed / (4.0 * run.length_m))
        config = cls(
            categories=categories,
            mixing_categories=mixing,
            flow_lpm=flow_lpm,
            ring_hz={k: tuple(sorted(v)) for k, v in rings.items()},
        )
        return replace(config, **overrides)
