"""The label hierarchy every package shares: valve -> fixture -> category.

A *category* is a kind of fixture (toilet, shower, ...). A *fixture* is one named instance in one
home ("upstairs toilet"). A *valve* is one physical valve of a fixture, the thing that actually
opens and closes and makes a pressure transient ("kitchen sink / hot"). Labels at a finer level
determine the coarser ones, which is why classifiers predict valves and sum upwards: the three
levels then never contradict each other.

Everything here is pure data (frozen dataclasses and enums), so the simulator, the learning core
and the service can all import it without pulling in I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Line(StrEnum):
    """A supply line; each has its own pressure sensor."""

    HOT = "hot"
    COLD = "cold"


class Category(StrEnum):
    """Fixture categories, the coarsest level shown to a homeowner."""

    TOILET = "toilet"
    BATHROOM_FAUCET = "bathroom_faucet"
    KITCHEN_FAUCET = "kitchen_faucet"
    SHOWER = "shower"
    BATHTUB = "bathtub"
    DISHWASHER = "dishwasher"
    WASHING_MACHINE = "washing_machine"
    OUTDOOR_HOSE = "outdoor_hose"


class Handle(StrEnum):
    """How a fixture's valves are arranged; it decides which valves a fixture has by default."""

    TWO_HANDLE = "two_handle"  # separate hot and cold handles
    SINGLE_HANDLE = "single_handle"  # one lever: hot, cold or mixed position
    MIXER = "mixer"  # shower / tub mixing valve: hot, cold or mixed
    FILL_VALVE = "fill_valve"  # toilet float valve, cold only
    SOLENOID_PAIR = "solenoid_pair"  # appliance with hot and cold inlet solenoids
    SOLENOID_HOT = "solenoid_hot"  # appliance with one hot inlet solenoid (most dishwashers)
    SPIGOT = "spigot"  # outdoor hose bib, cold only


class PipeMaterial(StrEnum):
    COPPER = "copper"
    CPVC = "cpvc"
    PEX = "pex"


class ClosureKind(StrEnum):
    """How a valve closes; the closure time decides how hard the water hammer is."""

    SOLENOID = "solenoid"  # 10-50 ms
    MANUAL = "manual"  # a hand on a handle, 0.1-1 s
    FLOAT = "float"  # toilet fill valve closing as the float rises, 1-5 s


#: Default valve names (and the lines each draws from) for each handle type.
DEFAULT_VALVES: dict[Handle, tuple[tuple[str, tuple[Line, ...]], ...]] = {
    Handle.TWO_HANDLE: (("hot", (Line.HOT,)), ("cold", (Line.COLD,))),
    Handle.SINGLE_HANDLE: (
        ("hot", (Line.HOT,)),
        ("cold", (Line.COLD,)),
        ("mixed", (Line.HOT, Line.COLD)),
    ),
    Handle.MIXER: (("hot", (Line.HOT,)), ("cold", (Line.COLD,)), ("mixed", (Line.HOT, Line.COLD))),
    Handle.FILL_VALVE: (("fill", (Line.COLD,)),),
    Handle.SOLENOID_PAIR: (("hot", (Line.HOT,)), ("cold", (Line.COLD,))),
    Handle.SOLENOID_HOT: (("hot", (Line.HOT,)),),
    Handle.SPIGOT: (("cold", (Line.COLD,)),),
}

#: The usual closure of each handle type.
DEFAULT_CLOSURE: dict[Handle, ClosureKind] = {
    Handle.TWO_HANDLE: ClosureKind.MANUAL,
    Handle.SINGLE_HANDLE: ClosureKind.MANUAL,
    Handle.MIXER: ClosureKind.MANUAL,
    Handle.FILL_VALVE: ClosureKind.FLOAT,
    Handle.SOLENOID_PAIR: ClosureKind.SOLENOID,
    Handle.SOLENOID_HOT: ClosureKind.SOLENOID,
    Handle.SPIGOT: ClosureKind.MANUAL,
}


@dataclass(frozen=True)
class PipeRun:
    """The pipe between one sensor and a valve: it sets wave speed, ringing and hammer size."""

    material: PipeMaterial
    length_m: float
    diameter_mm: float = 15.0


@dataclass(frozen=True)
class Closure:
    """How fast the valve closes (and opens: openings are modelled with the same kind)."""

    kind: ClosureKind
    time_s: float


@dataclass(frozen=True)
class Valve:
    """One physical valve. ``id`` is ``"<fixture id>/<valve name>"``, unique within a home."""

    id: str
    name: str
    fixture_id: str
    lines: tuple[Line, ...]
    runs: dict[Line, PipeRun]
    closure: Closure
    flow_lpm: float

    def __hash__(self) -> int:  # runs is a dict; identity is the id
        return hash(self.id)


@dataclass(frozen=True)
class Fixture:
    """One named fixture of a home."""

    id: str
    name: str
    category: Category
    handle: Handle
    location: str = ""
    valves: tuple[Valve, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Hierarchy:
    """Index of a home's valves with their fixture and category, for summing probabilities.

    Built from a fixture list; the order of ``valve_ids`` is the column order of every
    valve-probability matrix in the learning core.
    """

    valve_ids: tuple[str, ...]
    fixture_of: dict[str, str]
    category_of_fixture: dict[str, Category]

    @classmethod
    def from_fixtures(cls, fixtures: tuple[Fixture, ...] | list[Fixture]) -> Hierarchy:
        valve_ids: list[str] = []
        fixture_of: dict[str, str] = {}
        category_of_fixture: dict[str, Category] = {}
        for fixture in fixtures:
            category_of_fixture[fixture.id] = fixture.category
            for valve in fixture.valves:
                valve_ids.append(valve.id)
                fixture_of[valve.id] = fixture.id
        return cls(tuple(valve_ids), fixture_of, category_of_fixture)

    @property
    def fixture_ids(self) -> tuple[str, ...]:
        return tuple(self.category_of_fixture)

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(dict.fromkeys(self.category_of_fixture.values()))

    def category_of_valve(self, valve_id: str) -> Category:
        return self.category_of_fixture[self.fixture_of[valve_id]]

    def label_at(self, valve_id: str, level: str) -> str:
        """The label of ``valve_id`` at ``level`` ("valve", "fixture" or "category")."""
        if level == "valve":
            return valve_id
        if level == "fixture":
            return self.fixture_of[valve_id]
        if level == "category":
            return str(self.category_of_valve(valve_id))
        raise ValueError(f"level={level!r} should be one of 'valve', 'fixture', 'category'.")


def valve_id(fixture_id: str, valve_name: str) -> str:
    """The home-unique id of a valve."""
    return f"{fixture_id}/{valve_name}"


LEVELS: tuple[str, ...] = ("category", "fixture", "valve")
