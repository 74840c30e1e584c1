"""The home spec: an installer's description of a home's fixtures, valves and plumbing.

Installers write it by hand as TOML or JSON, so it is validated strictly (unknown keys are
refused: a typo such as ``lenght_m`` must not silently fall back to a default) and every error
names the field it is about, e.g. ``fixtures[2].runs.hot.length_m: Input should be greater than 0``.

Valves may be omitted: they are then derived from the fixture's handle type (a two-handle faucet
gets ``hot`` and ``cold``, a toilet gets ``fill``...), inheriting the fixture's pipe runs, closure
and flow. See ``docs/homespec.md`` for the format and ``simulator/presets/`` for examples.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from atlas.domain import (
    DEFAULT_CLOSURE,
    DEFAULT_VALVES,
    Category,
    Closure,
    ClosureKind,
    Fixture,
    Handle,
    Hierarchy,
    Line,
    PipeMaterial,
    PipeRun,
    Valve,
    valve_id,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,62}$"
_ID = Annotated[str, Field(pattern=ID_PATTERN)]

#: Typical closure times (seconds) when the spec gives none, within the usual ranges: solenoids
#: 10-50 ms, manual faucets 0.1-1 s, toilet fill valves 1-5 s (docs/simulator.md, 'Pressure model').
DEFAULT_CLOSURE_TIME_S: dict[ClosureKind, float] = {
    ClosureKind.SOLENOID: 0.03,
    ClosureKind.MANUAL: 0.4,
    ClosureKind.FLOAT: 2.5,
}

#: Typical flow rate (litres per minute) per category when the spec gives none.
DEFAULT_FLOW_LPM: dict[Category, float] = {
    Category.TOILET: 9.0,
    Category.BATHROOM_FAUCET: 5.0,
    Category.KITCHEN_FAUCET: 6.5,
    Category.SHOWER: 7.5,
    Category.BATHTUB: 15.0,
    Category.DISHWASHER: 6.0,
    Category.WASHING_MACHINE: 12.0,
    Category.OUTDOOR_HOSE: 18.0,
}


class HomeSpecError(ValueError):
    """A home spec is invalid; the message names each offending field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipeRunSpec(_Strict):
    material: PipeMaterial
    length_m: float = Field(gt=0, le=200)
    diameter_mm: float = Field(default=15.0, gt=3, le=100)


class ValveSpec(_Strict):
    name: _ID
    lines: list[Line] | None = None
    runs: dict[Line, PipeRunSpec] | None = None
    closure: ClosureKind | None = None
    closure_time_s: float | None = Field(default=None, gt=0, le=30)
    flow_lpm: float | None = Field(default=None, gt=0, le=100)


class FixtureSpec(_Strict):
    id: _ID
    name: str = Field(min_length=1, max_length=80)
    category: Category
    handle: Handle
    location: str = Field(default="", max_length=80)
    runs: dict[Line, PipeRunSpec]
    closure_time_s: float | None = Field(default=None, gt=0, le=30)
    flow_lpm: float | None = Field(default=None, gt=0, le=100)
    valves: list[ValveSpec] | None = None

    @model_validator(mode="after")
    def _runs_cover_lines(self) -> FixtureSpec:
        needed = {line for valve in self._valve_lines() for line in valve}
        missing = sorted(str(line) for line in needed - set(self.runs))
        if missing:
            raise ValueError(f"runs: needs a pipe run for line(s) {missing} used by its valves")
        return self

    def _valve_lines(self) -> list[tuple[Line, ...]]:
        if self.valves is None:
            return [lines for _, lines in DEFAULT_VALVES[self.handle]]
        defaults = dict(DEFAULT_VALVES[self.handle])
        return [
            tuple(v.lines) if v.lines else defaults.get(v.name, (Line.COLD,)) for v in self.valves
        ]


class SensorSpec(_Strict):
    sensor_id: _ID
    sample_rate_hz: int = Field(default=1000, ge=100, le=20000)


class HomeSpecModel(_Strict):
    """The file format (pydantic). :func:`load_home_spec` turns it into a :class:`HomeSpec`."""

    schema_: str = Field(default="atlas.home/1", alias="schema", pattern=r"^atlas\.home/1$")
    home_id: _ID
    name: str = Field(min_length=1, max_length=120)
    residents: int = Field(ge=1, le=12)
    timezone: str = Field(
        default="UTC", description="IANA time zone, e.g. Europe/Berlin", max_length=64
    )
    static_pressure_kpa: float = Field(ge=200, le=700)  # 29-100 psi; code maximum is 80 psi
    has_prv: bool = True
    sensors: dict[Line, SensorSpec]
    fixtures: list[FixtureSpec] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Question times, quiet hours and usage days are home-local: an unknown zone must be
        refused when the spec is read, not fail later in the middle of a daily update."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)"
            raise ValueError(message) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HomeSpecModel:
        missing = sorted(str(line) for line in Line if line not in self.sensors)
        if missing:
            raise ValueError(f"sensors: needs a sensor on every line, missing {missing}")
        seen: set[str] = set()
        for fixture in self.fixtures:
            if fixture.id in seen:
                raise ValueError(f"fixtures: duplicate fixture id {fixture.id!r}")
            seen.add(fixture.id)
        return self


@dataclass(frozen=True)
class HomeSpec:
    """A validated home: the file's fields plus the resolved fixtures and valves."""

    model: HomeSpecModel
    fixtures: tuple[Fixture, ...]

    @property
    def home_id(self) -> str:
        return self.model.home_id

    @property
    def hierarchy(self) -> Hierarchy:
        return Hierarchy.from_fixtures(self.fixtures)

    @property
    def valves(self) -> tuple[Valve, ...]:
        return tuple(v for f in self.fixtures for v in f.valves)

    def valve(self, vid: str) -> Valve:
        for v in self.valves:
            if v.id == vid:
                return v
        raise KeyError(f"home {self.home_id!r} has no valve {vid!r}")

    def fixture(self, fid: str) -> Fixture:
        for f in self.fixtures:
            if f.id == fid:
                return f
        raise KeyError(f"home {self.home_id!r} has no fixture {fid!r}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able data, as an installer would have written it."""
        return self.model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _to_run(spec: PipeRunSpec) -> PipeRun:
    return PipeRun(spec.material, spec.length_m, spec.diameter_mm)


def _resolve_fixture(spec: FixtureSpec) -> Fixture:
    defaults = dict(DEFAULT_VALVES[spec.handle])
    valve_specs = spec.valves or [ValveSpec(name=name) for name, _ in DEFAULT_VALVES[spec.handle]]
    valves = []
    for vs in valve_specs:
        lines = tuple(vs.lines) if vs.lines else defaults.get(vs.name, (Line.COLD,))
        runs = {line: _to_run(r) for line, r in (vs.runs or spec.runs).items() if line in lines}
        kind = vs.closure or DEFAULT_CLOSURE[spec.handle]
        time_s = vs.closure_time_s or spec.closure_time_s or DEFAULT_CLOSURE_TIME_S[kind]
        flow = vs.flow_lpm or spec.flow_lpm or DEFAULT_FLOW_LPM[spec.category]
        valves.append(
            Valve(
                id=valve_id(spec.id, vs.name),
                name=vs.name,
                fixture_id=spec.id,
                lines=lines,
                runs=runs,
                closure=Closure(kind, time_s),
                flow_lpm=flow,
            )
        )
    return Fixture(spec.id, spec.name, spec.category, spec.handle, spec.location, tuple(valves))


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{path or '(top level)'}: {err['msg']}")
    return "invalid home spec:\n  " + "\n  ".join(lines)


def parse_home_spec(data: dict[str, Any]) -> HomeSpec:
    """Validate a home spec given as a dict; raises :class:`HomeSpecError` naming each field."""
    try:
        model = HomeSpecModel.model_validate(data)
    except ValidationError as exc:
        raise HomeSpecError(_format_errors(exc)) from None
    return HomeSpec(model=model, fixtures=tuple(_resolve_fixture(f) for f in model.fixtures))


def load_home_spec(path: str | Path) -> HomeSpec:
    """Read a ``.toml`` or ``.json`` home spec file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise HomeSpecError(f"{path}: home spec must be a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise HomeSpecError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    try:
        return parse_home_spec(data)
    except HomeSpecError as exc:
        raise HomeSpecError(f"{path}: {exc}") from None


def is_valid_id(text: str) -> bool:
    """True when ``text`` may be used as a home, sensor or fixture id (safe in topics and URLs)."""
    return re.fullmatch(ID_PATTERN, text) is not None
