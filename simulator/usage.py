"""Who uses which valve when: a day-by-day schedule for a household (pure, deterministic by seed).

Rates come from published end-use studies (sources in ``docs/simulator.md``, 'Usage model'):
about 5 toilet flushes and ~0.7 showers (5-10 min) per person per day, ~4 bathroom-faucet uses
per person per day, 10-14 kitchen-faucet uses per household per day (10-60 s), a dishwasher
0.15-0.25 times a day (4 short hot fills over ~90 min), a washing machine ~0.3 times a day (~4
fills over ~100 min), the bathtub and the garden hose now and then.

Each resident gets habits (a preferred bathroom, wake-up time, flow setting, hot/cold/mixed
choice, how fast their hand turns a handle, how long they run water), so that the same valve
makes somewhat different transients depending on who used it, as in real homes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atlas.domain import Category, ClosureKind, Fixture, Handle, Line, Valve
from atlas.homespec import HomeSpec
from simulator.physics import OPENING_FACTOR

DAY_S = 86_400.0
TOILET_TANK_L = 6.0  # 1.6 gallons per flush (US federal limit since 1994)

#: Daily rates: per person, except the household rates marked so (docs/simulator.md, 'Usage model').
FLUSHES_PER_PERSON = 5.0
HANDWASH_AFTER_FLUSH = 0.5  # about half the flushes are followed by washing hands
OTHER_BATHROOM_FAUCET_PER_PERSON = 1.5  # tooth brushing, face: ~4 bathroom-faucet uses in all
SHOWERS_PER_PERSON = 0.7
BATHS_PER_PERSON = 0.04
KITCHEN_PER_HOUSEHOLD = (10.0, 14.0)  # uniform range of the household's own rate
DISHWASHER_PER_HOUSEHOLD = (0.15, 0.25)
WASHER_PER_PERSON = 0.1  # ~0.3 runs/day for 3 residents
HOSE_PER_HOUSEHOLD = 0.1


@dataclass(frozen=True)
class PlannedUse:
    """One valve actuation planned by the usage model (times in seconds since the run start).

    ``hot_share`` is the fraction of the flow drawn from the hot line (1 or 0 for single-line
    valves, in between for a mixing valve); ``flow_scale`` the fraction of the valve's rated flow.
    """

    use_id: str
    valve_id: str
    start_s: float
    duration_s: float
    flow_scale: float
    hot_share: float
    open_s: float
    close_s: float
    person: int  # -1 for appliances
    activity: str


@dataclass(frozen=True)
class LeakingFlapper:
    """A toilet whose flapper no longer seals (the most common household leak).

    Water seeps from the tank into the bowl until the float has dropped far enough to open the
    fill valve, which tops the tank up with a short refill (a "phantom flush"), and the cycle
    repeats ``interval_min`` minutes after the tank was last full, day and night. A real flush
    refills the tank and restarts the cycle. The refills are what the sensor hears: short runs
    of the toilet's fill valve, with no flush volume, at a regular rhythm.
    """

    fixture_id: str | None = None  # None: the home's first toilet
    start_s: float = 0.0  # when the seal fails, seconds since the run start
    interval_min: float = 20.0
    refill_l: float = 0.8


@dataclass(frozen=True)
class LeftRunning:
    """A valve left open (a garden hose forgotten in a flower bed): one use of ``duration_s``
    from ``start_s``. Normal uses of the same valve while it runs are dropped."""

    start_s: float
    duration_s: float = 4 * 3600.0
    valve_id: str | None = None  # None: the home's first outdoor hose


@dataclass(frozen=True)
class Faults:
    """Faults injected into a schedule; the default (none) leaves every schedule unchanged."""

    flapper: LeakingFlapper | None = None
    left_running: LeftRunning | None = None


@dataclass(frozen=True)
class Habits:
    """One resident's habits; drawn once per person from the seed."""

    wake_h: float
    bathroom: str
    shower_in_morning: bool
    shower_min: float
    flow_scale: float
    hand_speed: float  # multiplies manual closing/opening times
    hot_share: float  # how warm they like mixed water
    faucet_choice: tuple[float, float, float]  # P(cold), P(hot), P(warm)
    duration_scale: float


@dataclass(frozen=True)
class _Draft:
    valve: Valve
    start_s: float
    duration_s: float
    person: int
    activity: str
    hot_share: float | None = None
    flow_scale: float | None = None


def _lognormal(rng: np.random.Generator, sigma: float) -> float:
    return float(np.exp(rng.normal(0.0, sigma)))


def draw_habits(spec: HomeSpec, rng: np.random.Generator, variation: float) -> list[Habits]:
    """Habits of each resident; ``variation`` scales how different the residents are."""
    bathrooms = sorted({f.location for f in spec.fixtures if f.category == Category.TOILET})
    bathrooms = bathrooms or [""]
    habits = []
    for person in range(spec.model.residents):
        choice = rng.dirichlet(np.array([5.5, 1.5, 3.0]) * 4.0 / max(variation, 0.05))
        habits.append(
            Habits(
                wake_h=float(np.clip(rng.normal(6.8, 0.8), 5.0, 9.5)),
                bathroom=bathrooms[(person + int(rng.integers(len(bathrooms)))) % len(bathrooms)],
                shower_in_morning=bool(rng.random() < 0.7),
                shower_min=float(rng.uniform(6.0, 9.0)),
                flow_scale=float(np.clip(rng.normal(0.8, 0.12 * variation), 0.45, 1.0)),
                hand_speed=_lognormal(rng, 0.35 * variation),
                hot_share=float(np.clip(rng.normal(0.55, 0.08 * variation), 0.3, 0.8)),
                faucet_choice=(float(choice[0]), float(choice[1]), float(choice[2])),
                duration_scale=_lognormal(rng, 0.25 * variation),
            )
        )
    return habits


def _hour(rng: np.random.Generator, components: list[tuple[float, float, float]]) -> float:
    """Draw an hour of day from a mixture of (weight, mean_h, sd_h) normals."""
    weights = np.array([c[0] for c in components])
    k = int(rng.choice(len(components), p=weights / weights.sum()))
    _, mean, sd = components[k]
    return float(np.clip(rng.normal(mean, sd), 0.0, 23.99))


def _person_hour(rng: np.random.Generator, habits: Habits, weekend: bool) -> float:
    """Personal activity: a wake-up peak, a quieter day, an evening peak, bedtime."""
    wake = habits.wake_h + (1.5 if weekend else 0.0)
    return _hour(
        rng,
        [
            (0.32, wake + 0.5, 0.5),
            (0.18 if not weekend else 0.3, 13.0, 2.5),
            (0.36, 19.0, 1.5),
            (0.10, 22.6, 0.5),
            (0.04, 3.0, 1.2),  # the night-time flush
        ],
    )


def _fixtures(spec: HomeSpec, category: Category) -> list[Fixture]:
    return [f for f in spec.fixtures if f.category == category]


def _near(fixtures: list[Fixture], location: str, rng: np.random.Generator, p_own: float):
    own = [f for f in fixtures if f.location == location]
    if own and rng.random() < p_own:
        return own[int(rng.integers(len(own)))]
    return fixtures[int(rng.integers(len(fixtures)))] if fixtures else None


def _valve(fixture: Fixture, name: str) -> Valve:
    for v in fixture.valves:
        if v.name == name:
            return v
    return fixture.valves[0]


def _faucet_drafts(
    fixture: Fixture,
    temp: str,
    start: float,
    duration: float,
    person: int,
    activity: str,
    rng: np.random.Generator,
) -> list[_Draft]:
    """Drafts for running water at ``temp`` ('cold' | 'hot' | 'warm') from ``fixture``.

    A two-handle faucet gives warm water as two overlapping uses (both handles, staggered).
    """
    names = {v.name for v in fixture.valves}
    if temp == "warm" and "mixed" in names:
        return [_Draft(_valve(fixture, "mixed"), start, duration, person, activity)]
    if temp == "warm" and {"hot", "cold"} <= names:
        first, second = ("hot", "cold") if rng.random() < 0.6 else ("cold", "hot")
        lag = float(rng.uniform(0.5, 2.5))
        tail = float(rng.uniform(-1.5, 1.5))
        return [
            _Draft(_valve(fixture, first), start, duration, person, activity),
            _Draft(
                _valve(fixture, second),
                start + lag,
                max(2.0, duration - lag + tail),
                person,
                activity,
            ),
        ]
    name = temp if temp in names else fixture.valves[0].name
    return [_Draft(_valve(fixture, name), start, duration, person, activity)]


def _temp(rng: np.random.Generator, probs: tuple[float, float, float]) -> str:
    return ("cold", "hot", "warm")[int(rng.choice(3, p=np.array(probs) / sum(probs)))]


def _day_drafts(
    spec: HomeSpec,
    habits: list[Habits],
    day: int,
    weekday: int,
    rng: np.random.Generator,
    household: dict[str, float],
) -> list[_Draft]:
    weekend = weekday >= 5
    t0 = day * DAY_S
    drafts: list[_Draft] = []
    toilets = _fixtures(spec, Category.TOILET)
    sinks = _fixtures(spec, Category.BATHROOM_FAUCET)
    showers = _fixtures(spec, Category.SHOWER)
    tubs = _fixtures(spec, Category.BATHTUB)
    kitchens = _fixtures(spec, Category.KITCHEN_FAUCET)

    for person, h in enumerate(habits):
        for _ in range(rng.poisson(FLUSHES_PER_PERSON)):
            toilet = _near(toilets, h.bathroom, rng, 0.85)
            start = t0 + _person_hour(rng, h, weekend) * 3600.0
            if toilet is not None:
                drafts.append(_Draft(toilet.valves[0], start, 0.0, person, "flush"))
                if rng.random() < HANDWASH_AFTER_FLUSH:
                    sink = _near(sinks, toilet.location, rng, 0.97)
                    if sink is not None:
                        duration = h.duration_scale * float(rng.lognormal(np.log(12.0), 0.4))
                        drafts += _faucet_drafts(
                            sink,
                            _temp(rng, h.faucet_choice),
                            start + rng.uniform(4.0, 25.0),
                            float(np.clip(duration, 3.0, 60.0)),
                            person,
                            "handwash",
                            rng,
                        )
        for _ in range(rng.poisson(OTHER_BATHROOM_FAUCET_PER_PERSON)):
            sink = _near(sinks, h.bathroom, rng, 0.9)
            if sink is not None:
                duration = h.duration_scale * float(rng.lognormal(np.log(25.0), 0.5))
                drafts += _faucet_drafts(
                    sink,
                    _temp(rng, h.faucet_choice),
                    t0 + _person_hour(rng, h, weekend) * 3600,
                    float(np.clip(duration, 3.0, 120.0)),
                    person,
                    "brush",
                    rng,
                )
        for _ in range(rng.poisson(SHOWERS_PER_PERSON)):
            own = [f for f in showers + tubs if f.location == h.bathroom]
            fixture = _near(own or showers or tubs, h.bathroom, rng, 0.9)
            if fixture is not None:
                morning = h.shower_in_morning == (rng.random() < 0.85)
                hour = (
                    (h.wake_h + (1.5 if weekend else 0.0) + rng.uniform(0.1, 0.8))
                    if morning
                    else rng.normal(21.0, 1.0)
                )
                minutes = float(np.clip(rng.normal(h.shower_min, 1.3), 3.0, 15.0))
                temp = "warm" if rng.random() < 0.92 else "hot"
                drafts += _faucet_drafts(
                    fixture,
                    temp,
                    t0 + float(np.clip(hour, 0, 23.9)) * 3600,
                    minutes * 60,
                    person,
                    "shower",
                    rng,
                )
        for _ in range(rng.poisson(BATHS_PER_PERSON)):
            if tubs:
                tub = tubs[int(rng.integers(len(tubs)))]
                drafts += _faucet_drafts(
                    tub,
                    "warm",
                    t0 + rng.normal(20.0, 1.0) * 3600,
                    rng.uniform(6, 10) * 60,
                    person,
                    "bath",
                    rng,
                )

    for _ in range(rng.poisson(household["kitchen"])):
        fixture = kitchens[int(rng.integers(len(kitchens)))] if kitchens else None
        if fixture is None:
            break
        person = int(rng.integers(len(habits)))
        hour = _hour(rng, [(0.25, 7.5, 0.7), (0.2, 12.3, 0.8), (0.45, 18.5, 1.0), (0.1, 15, 4)])
        duration = habits[person].duration_scale * float(rng.lognormal(np.log(22.0), 0.55))
        probs = habits[person].faucet_choice
        drafts += _faucet_drafts(
            fixture,
            _temp(rng, (probs[0], probs[1] + 0.1, probs[2])),
            t0 + hour * 3600,
            float(np.clip(duration, 5.0, 120.0)),
            person,
            "kitchen",
            rng,
        )

    drafts += _appliance_drafts(spec, t0, weekend, rng, household)
    return drafts


def _appliance_drafts(
    spec: HomeSpec,
    t0: float,
    weekend: bool,
    rng: np.random.Generator,
    household: dict[str, float],
) -> list[_Draft]:
    drafts: list[_Draft] = []
    for dishwasher in _fixtures(spec, Category.DISHWASHER):
        if rng.random() < household["dishwasher"]:
            start = t0 + float(np.clip(rng.normal(20.5, 1.2), 8.0, 23.5)) * 3600
            for offset_min in (0.0, 22.0, 58.0, 84.0):  # pre-rinse, wash, rinse, final rinse
                at = start + (offset_min + rng.normal(0.0, 2.0)) * 60
                drafts.append(
                    _Draft(_valve(dishwasher, "hot"), at, rng.uniform(55, 95), -1, "dishwasher")
                )
    for washer in _fixtures(spec, Category.WASHING_MACHINE):
        if rng.random() < household["washer"] * (1.4 if weekend else 0.85):
            start = t0 + float(rng.uniform(8.5, 20.5)) * 3600
            wash = ("cold", "warm", "hot")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
            fills = [(0.0, wash, rng.uniform(100, 150))] + [
                (minutes + rng.normal(0.0, 3.0), "cold", rng.uniform(60, 110))
                for minutes in (38.0, 62.0, 86.0)
            ]
            for offset_min, temp, seconds in fills:
                at = start + offset_min * 60
                names = ("hot", "cold") if temp == "warm" else (temp,)
                for k, name in enumerate(names):
                    drafts.append(_Draft(_valve(washer, name), at + 0.2 * k, seconds, -1, "washer"))
    hoses = _fixtures(spec, Category.OUTDOOR_HOSE)
    if hoses and rng.random() < household["hose"] * (2.0 if weekend else 0.6):
        hose = hoses[int(rng.integers(len(hoses)))]
        hour = _hour(rng, [(0.5, 8.5, 1.0), (0.5, 18.5, 1.0)])
        drafts.append(_Draft(hose.valves[0], t0 + hour * 3600, rng.uniform(3, 20) * 60, -1, "hose"))
    return drafts


def _lock_key(fixture: Fixture, valve: Valve) -> str:
    """Valves that cannot run at once share a key: one lever is in one position at a time."""
    if fixture.handle in (Handle.TWO_HANDLE, Handle.SOLENOID_PAIR):
        return valve.id
    return fixture.id


def _finish(
    spec: HomeSpec,
    draft: _Draft,
    habits: list[Habits],
    rng: np.random.Generator,
    variation: float,
    plumbing_scale: dict[str, float],
) -> tuple[float, float, float, float, float]:
    """(duration, flow_scale, hot_share, open_s, close_s) of a draft."""
    valve = draft.valve
    kind = valve.closure.kind
    spec_t = valve.closure.time_s
    person = habits[draft.person] if draft.person >= 0 else None
    manual = kind == ClosureKind.MANUAL and person is not None
    if manual:
        close_s = spec_t * person.hand_speed * _lognormal(rng, 0.3 * variation)
        open_s = (
            spec_t * OPENING_FACTOR[kind] * person.hand_speed * _lognormal(rng, 0.3 * variation)
        )
        flow = person.flow_scale * float(rng.normal(1.0, 0.12 * variation))
    else:
        close_s = spec_t * _lognormal(rng, 0.12 * variation)
        open_s = spec_t * OPENING_FACTOR[kind] * _lognormal(rng, 0.2 * variation)
        flow = plumbing_scale[valve.id] * float(rng.normal(1.0, 0.03 * variation))
    if draft.activity in ("shower", "bath", "hose"):
        flow = max(flow, 0.75) * plumbing_scale[valve.id]
    flow = float(np.clip(flow, 0.25, 1.1))
    if Line.HOT in valve.lines and Line.COLD in valve.lines:
        base = person.hot_share if person is not None else 0.5
        hot_share = float(np.clip(base + rng.normal(0.0, 0.07 * variation), 0.15, 0.9))
    else:
        hot_share = 1.0 if valve.lines == (Line.HOT,) else 0.0
    duration = draft.duration_s
    if draft.activity == "flush":  # the fill valve runs until the tank is full again
        duration = TOILET_TANK_L / (valve.flow_lpm * flow) * 60.0 * float(rng.normal(1.0, 0.05))
    duration = max(duration, open_s + 0.5)
    return (
        duration,
        flow,
        hot_share,
        float(np.clip(open_s, 0.01, 5.0)),
        float(np.clip(close_s, 0.005, 8.0)),
    )


def schedule(
    spec: HomeSpec,
    *,
    days: int,
    seed: int | np.random.Generator,
    variation: float = 1.0,
    first_weekday: int = 0,
    faults: Faults | None = None,
) -> list[PlannedUse]:
    """All valve uses of ``days`` days, sorted by start time.

    Parameters
    ----------
    spec : HomeSpec
        The home; its residents and fixtures decide what is used.
    days : int
        Number of days, starting at local midnight of day 0.
    seed : int or Generator
        Randomness; the same seed gives the same schedule.
    variation : float, default=1.0
        Spread of habits between people and between uses (0 = everyone identical, every use
        the same).
    first_weekday : int, default=0
        Weekday of day 0 (Monday = 0); weekends start later and run more laundry.
    faults : Faults, optional
        A leaking toilet flapper and/or a valve left running. Their randomness is drawn after
        the household's, so the household's own uses are the same with or without them.
    """
    if days < 1:
        raise ValueError(f"days={days} should be >= 1.")
    if variation < 0:
        raise ValueError(f"variation={variation} should be >= 0.")
    rng = np.random.default_rng(seed)
    habits = draw_habits(spec, rng, variation)
    household = {
        "kitchen": float(rng.uniform(*KITCHEN_PER_HOUSEHOLD)),
        "dishwasher": float(rng.uniform(*DISHWASHER_PER_HOUSEHOLD)),
        "washer": WASHER_PER_PERSON * spec.model.residents,
        "hose": HOSE_PER_HOUSEHOLD,
    }
    plumbing_scale = {v.id: float(rng.uniform(0.88, 1.0)) for v in spec.valves}
    drafts: list[_Draft] = []
    for day in range(days):
        drafts += _day_drafts(spec, habits, day, (first_weekday + day) % 7, rng, household)
    drafts.sort(key=lambda d: d.start_s)

    fixture_of = {f.id: f for f in spec.fixtures}
    busy_until: dict[str, float] = {}
    uses: list[PlannedUse] = []
    for draft in drafts:
        valve = draft.valve
        duration, flow, hot_share, open_s, close_s = _finish(
            spec, draft, habits, rng, variation, plumbing_scale
        )
        key = _lock_key(fixture_of[valve.fixture_id], valve)
        start = max(draft.start_s, 0.0)
        free_at = busy_until.get(key)
        if free_at is not None and start < free_at + 2.0:  # still running: the person waits
            start = free_at + float(rng.uniform(3.0, 20.0))
        busy_until[key] = start + duration + close_s
        uses.append(
            PlannedUse(
                "",
                valve.id,
                start,
                duration,
                flow,
                hot_share,
                open_s,
                close_s,
                draft.person,
                draft.activity,
            )
        )
    if faults is not None:
        uses = _with_faults(
            spec, uses, faults, rng, days * DAY_S, variation, habits, plumbing_scale
        )
    uses.sort(key=lambda u: u.start_s)
    return [
        PlannedUse(f"u{n:06d}", *(getattr(u, f) for f in _FIELDS[1:])) for n, u in enumerate(uses)
    ]


def _fault_use(
    spec: HomeSpec,
    valve: Valve,
    start: float,
    duration: float,
    activity: str,
    rng: np.random.Generator,
    variation: float,
    habits: list[Habits],
    plumbing_scale: dict[str, float],
) -> PlannedUse:
    """A use of ``valve`` finished like an appliance's (no hand on the valve)."""
    draft = _Draft(valve, start, duration, -1, "hose" if activity == "left_running" else activity)
    _, flow, hot_share, open_s, close_s = _finish(
        spec, draft, habits, rng, variation, plumbing_scale
    )
    return PlannedUse("", valve.id, start, duration, flow, hot_share, open_s, close_s, -1, activity)


def _with_faults(
    spec: HomeSpec,
    uses: list[PlannedUse],
    faults: Faults,
    rng: np.random.Generator,
    end_s: float,
    variation: float,
    habits: list[Habits],
    plumbing_scale: dict[str, float],
) -> list[PlannedUse]:
    """``uses`` plus the faults' uses (see :class:`LeakingFlapper` and :class:`LeftRunning`)."""
    fixture_of = {f.id: f for f in spec.fixtures}
    out = list(uses)
    running = faults.left_running
    if running is not None:
        if running.valve_id is not None:
            valve = spec.valve(running.valve_id)
        else:
            hoses = _fixtures(spec, Category.OUTDOOR_HOSE)
            if not hoses:
                raise ValueError(f"home {spec.home_id!r} has no outdoor hose to leave running.")
            valve = hoses[0].valves[0]
        if running.duration_s <= 0:
            raise ValueError(f"duration_s={running.duration_s} should be > 0.")
        key = _lock_key(fixture_of[valve.fixture_id], valve)
        stop = running.start_s + running.duration_s
        out = [  # nobody uses the valve that is already open
            u
            for u in out
            if _lock_key(fixture_of[spec.valve(u.valve_id).fixture_id], spec.valve(u.valve_id))
            != key
            or u.start_s + u.duration_s + u.close_s < running.start_s - 10.0
            or u.start_s > stop + 10.0
        ]
        left = _fault_use(
            spec,
            valve,
            running.start_s,
            running.duration_s,
            "left_running",
            rng,
            variation,
            habits,
            plumbing_scale,
        )
        out.append(left)
    flapper = faults.flapper
    if flapper is not None:
        out += _flapper_refills(spec, out, flapper, rng, end_s, variation, habits, plumbing_scale)
    return out


def _flapper_refills(
    spec: HomeSpec,
    uses: list[PlannedUse],
    leak: LeakingFlapper,
    rng: np.random.Generator,
    end_s: float,
    variation: float,
    habits: list[Habits],
    plumbing_scale: dict[str, float],
) -> list[PlannedUse]:
    """The fill valve's short refills of a leaking toilet, between its real flush fills."""
    toilets = _fixtures(spec, Category.TOILET)
    if leak.fixture_id is not None:
        toilets = [f for f in toilets if f.id == leak.fixture_id]
    if not toilets:
        raise ValueError(f"home {spec.home_id!r} has no toilet {leak.fixture_id or ''!r}.")
    if leak.interval_min <= 0 or leak.refill_l <= 0:
        raise ValueError("interval_min and refill_l should be > 0.")
    valve = toilets[0].valves[0]
    fills = sorted(
        (u.start_s, u.start_s + u.duration_s + u.close_s) for u in uses if u.valve_id == valve.id
    )
    refills: list[PlannedUse] = []
    full_at = leak.start_s  # the tank is full when the seal starts to fail
    k = 0
    while True:
        while k < len(fills) and fills[k][1] <= full_at:
            k += 1
        due = full_at + leak.interval_min * 60.0 * _lognormal(rng, 0.1 * variation)
        if due >= end_s:
            break
        if k < len(fills) and fills[k][0] <= due:  # flushed before the level got low
            full_at = fills[k][1]
            continue
        use = _fault_use(
            spec, valve, due, 1.0, "phantom_refill", rng, variation, habits, plumbing_scale
        )
        litres = leak.refill_l * _lognormal(rng, 0.1 * variation)
        # the ramps pass 2/3 of full flow (simulator.generate.true_litres): the refill ends
        # when the tank has its litres back
        at_full_flow = litres / (valve.flow_lpm * use.flow_scale) * 60.0
        duration = max(at_full_flow + use.open_s / 3 - 2 * use.close_s / 3, use.open_s + 0.5)
        finish = due + duration + use.close_s
        if k < len(fills) and fills[k][0] < finish + 2.0:  # a flush comes first: it fills up
            full_at = fills[k][1]
            continue
        refills.append(
            PlannedUse(
                "",
                valve.id,
                due,
                duration,
                use.flow_scale,
                use.hot_share,
                use.open_s,
                use.close_s,
                -1,
                "phantom_refill",
            )
        )
        full_at = finish
    return refills


_FIELDS = tuple(PlannedUse.__dataclass_fields__)


def one_use_each(
    spec: HomeSpec, valve_ids: list[str], *, spacing_s: float = 30.0, duration_s: float = 8.0
) -> list[PlannedUse]:
    """One textbook use of each valve (rated flow, the spec's closure times), ``spacing_s``
    apart: what an installer checking valves one by one produces, and what ``plot`` shows."""
    uses = []
    for n, vid in enumerate(valve_ids):
        valve = spec.valve(vid)
        kind = valve.closure.kind
        hot_share = 0.5 if len(valve.lines) > 1 else (1.0 if valve.lines == (Line.HOT,) else 0.0)
        uses.append(
            PlannedUse(
                use_id=f"u{n:06d}",
                valve_id=vid,
                start_s=1.0 + n * spacing_s,
                duration_s=duration_s,
                flow_scale=1.0,
                hot_share=hot_share,
                open_s=valve.closure.time_s * OPENING_FACTOR[kind],
                close_s=valve.closure.time_s,
                person=-1,
                activity="check",
            )
        )
    return uses
