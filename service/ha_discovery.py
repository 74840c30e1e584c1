"""Home Assistant over MQTT: each home's sensors (discovery), its retained state, and an event
per classified use.

Config topics ``<prefix>/<platform>/<object_id>/config`` (retained) describe, per home:

* sensors of the display level and of the accuracy per level;
* water sensors: litres since the home's first use, in all and per group of the category
  grouping (and, once the display level is fixture or valve, per fixture; lumped fixtures are
  one sensor named for the lump), ``device_class: water``, ``state_class: total``, ``L``;
* an ``event`` entity, "Water use", fed by one non-retained message per classified use on
  ``{base}/homes/{home}/uses``.

The sensors read the home's retained state topic ``{base}/homes/{home}/state`` with a
``value_template``; an availability topic says whether the service is up (the runtime's MQTT
will message sets it offline). Everything is published again when ``<prefix>/status`` says
``online`` (Home Assistant restarted and forgot the entities), and the discovery at each daily
update (the groups with a sensor follow the display level and its lumps).

The litres are those of ``GET /v1/homes/{id}/usage`` (:mod:`service.api.usage_report`), got by
calling it: the same grouping, lumps, low-confidence threshold and volume model. Why the
state class is ``total`` and how the totals are kept: docs/usage.md, "Home Assistant".
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from atlas.levels import RULE_CONFIDENT, lump_id
from atlas.uses import WaterUse
from service.api.schemas.usage import UsageGroupPublic, UsagePublic
from service.api.usage_report import LOW_CONFIDENCE, MAX_DAYS, UNCLASSIFIED, usage_report
from service.api.wording import label_texts, lump_texts, text_of
from service.storage import dashboard
from service.storage.classifications import model_version_name
from service.storage.flowcalibrations import latest_calibration_id
from service.storage.homestatus import load_home_status
from service.storage.schema import homes
from service.storage.usage import first_use_at
from service.storage.uses import load_uses

_LOGGER = logging.getLogger(__name__)

MANUFACTURER = "Atlas"
MODEL = "HydroSense-style pressure sensing"
LEVELS = ("category", "fixture", "valve")

#: Home Assistant's units for ``device_class: water`` are L, m³, gal, ft³ and CCF: litres, as
#: the usage endpoint serves them.
WATER_UNIT = "L"
#: ``total``, not ``total_increasing``: a group's litres go down when one of its uses is
#: reclassified into another group, and every use's litres move when the display level (and
#: with it the branch resistance the volume estimate uses) changes; ``total_increasing`` would
#: read any such dip as a meter reset (docs/usage.md, "Home Assistant").
WATER_STATE_CLASS = "total"
#: Display levels at which the water sensors also go per fixture.
FIXTURE_LEVELS = ("fixture", "valve")
#: Groups every grouping has besides the named ones (never hidden).
OTHER_GROUPS = (LOW_CONFIDENCE, UNCLASSIFIED)
_OTHER_TEXTS = {UNCLASSIFIED: "Unclassified", LOW_CONFIDENCE: "Low confidence"}
#: A refresh of the totals counts again the uses started this long before the last full count
#: (uses stored late, recent reclassifications); older ones are counted again in full at each
#: daily update and on the first publication after a start.
RECOUNT_OVERLAP = timedelta(days=2)
#: Uses that started longer ago than this get no use event when they are classified (a replay
#: of history or a backlog after downtime is not news); and at most this many per pass.
USE_EVENT_MAX_AGE = timedelta(days=1)
MAX_USE_EVENTS = 50
_OBJECT_ID = re.compile(r"[^A-Za-z0-9]+")


def availability_topic(topic_base: str) -> str:
    return f"{topic_base}/service/availability"


def state_topic(topic_base: str, home_id: str) -> str:
    return f"{topic_base}/homes/{home_id}/state"


def uses_topic(topic_base: str, home_id: str) -> str:
    """Non-retained: one message per classified use (the ``event`` entity's state topic)."""
    return f"{topic_base}/homes/{home_id}/uses"


@dataclass(frozen=True)
class WaterGroup:
    """A group with a water sensor: ``grouping`` is its key under the state's ``water``
    (``category`` or ``fixture``), ``group`` the usage endpoint's group id."""

    grouping: str
    group: str
    text: str
    kind: str  # as the usage endpoint's: named, lump, low_confidence, unclassified


def _groups(
    inventory: list[dict[str, Any]], display: str, lumps: Sequence[Sequence[str]]
) -> list[WaterGroup]:
    texts = label_texts(inventory) | lump_texts(inventory, lumps) | _OTHER_TEXTS
    categories = sorted({f["category"] for f in inventory})
    if display == "rules":  # week 1: the rules name only these; the rest is unclassified
        categories = [c for c in categories if c in RULE_CONFIDENT]
    named = [("category", c, "named") for c in categories]
    if display in FIXTURE_LEVELS:
        lumped = {f for lump in lumps for f in lump}
        named += [
            ("fixture", f["fixture_id"], "named")
            for f in inventory
            if f["fixture_id"] not in lumped
        ]
        named += [("fixture", lump_id(lump), "lump") for lump in lumps]
    out = []
    for grouping in ("category", "fixture") if display in FIXTURE_LEVELS else ("category",):
        rows = [n for n in named if n[0] == grouping] + [(grouping, o, o) for o in OTHER_GROUPS]
        out += [WaterGroup(gr, g, text_of(texts, g), kind) for gr, g, kind in rows]
    return out


def water_groups(conn: Connection, home_id: str) -> list[WaterGroup]:
    """The groups the usage endpoint serves for ``home_id`` now: at the category grouping
    (week 1: the rule-confident categories), and per fixture or lump at the fixture level and
    finer; each grouping with ``low_confidence`` and ``unclassified``."""
    status = dashboard.home_status_row(conn, home_id) or {}
    inventory = dashboard.fixture_inventory(conn, home_id)
    return _groups(inventory, dashboard.shown_level(status), dashboard.shown_lumps(status))


def _object_id(home_id: str) -> str:
    return f"atlas_{home_id}".replace("-", "_")


def _water_object_id(home_id: str, group: WaterGroup) -> str:
    slug = _OBJECT_ID.sub("_", group.group).strip("_").lower()
    return f"{_object_id(home_id)}_water_{group.grouping}_{slug}"


def _guarded(grouping: str | None, group: str | None, then: str, otherwise: str) -> str:
    """A null-safe template: ``then`` on the group's entry of the state's ``water`` (``entry``
    stands for it) when the state has it, else ``otherwise``. Group ids are JSON strings in
    brackets: fixture ids and lumps (``lump:a+b``) are no Jinja names."""
    if grouping is None:
        entry, guard = "value_json.water", "value_json.water is defined"
    else:
        key = json.dumps(group)
        entry = f"value_json.water.{grouping}[{key}]"
        guard = (
            f"value_json.water is defined and value_json.water.{grouping} is defined "
            f"and {key} in value_json.water.{grouping}"
        )
    return "{{ " + then.replace("entry", entry) + f" if {guard} else {otherwise}" + " }}"


def _water_sensor(name: str, unique_id: str, grouping: str | None, group: str | None) -> dict:
    return {
        "name": name,
        "unique_id": unique_id,
        "device_class": "water",
        "state_class": WATER_STATE_CLASS,
        "unit_of_measurement": WATER_UNIT,
        "suggested_display_precision": 0,
        "value_template": _guarded(grouping, group, "entry.litres", "none"),
        # the uncertainty and the number of uses as attributes
        "json_attributes_template": _guarded(
            grouping,
            group,
            "{'litres_sigma': entry.litres_sigma, 'count': entry.count, "
            "'unsized': entry.unsized} | tojson",
            "'{}'",
        ),
    }


def discovery_messages(
    prefix: str,
    topic_base: str,
    home_id: str,
    home_name: str,
    sw_version: str,
    groups: Sequence[WaterGroup] = (),
) -> list[tuple[str, dict]]:
    """``(config topic, payload)`` for the entities of one home; the water sensors and the use
    event only with ``groups`` (:func:`water_groups`)."""
    state = state_topic(topic_base, home_id)
    device = {
        "identifiers": [f"atlas-{home_id}"],
        "name": f"Atlas {home_name}",
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": sw_version,
    }
    common = {
        "state_topic": state,
        "availability_topic": availability_topic(topic_base),
        "device": device,
    }
    obj = _object_id(home_id)
    out = [
        (
            f"{prefix}/sensor/{obj}_level/config",
            {
                "name": "Display level",
                "unique_id": f"{obj}_level",
                "value_template": "{{ value_json.level }}",
                "icon": "mdi:water-check",
                **common,
            },
        )
    ]
    for level in LEVELS:
        out.append(
            (
                f"{prefix}/sensor/{obj}_accuracy_{level}/config",
                {
                    "name": f"Accuracy ({level})",
                    "unique_id": f"{obj}_accuracy_{level}",
                    "value_template": (
                        f"{{{{ (value_json.accuracy.{level}.estimate * 100) | round(1) }}}}"
                    ),
                    "unit_of_measurement": "%",
                    "state_class": "measurement",
                    **common,
                },
            )
        )
    if not groups:
        return out
    attributes = {"json_attributes_topic": state}
    total = _water_sensor("Water (all uses)", f"{obj}_water_total", None, None)
    out.append((f"{prefix}/sensor/{obj}_water_total/config", total | attributes | common))
    for g in groups:
        oid = _water_object_id(home_id, g)
        sensor = _water_sensor(f"Water ({g.grouping}): {g.text}", oid, g.grouping, g.group)
        out.append((f"{prefix}/sensor/{oid}/config", sensor | attributes | common))
    event_types = [g.group for g in groups if g.grouping == "category"]
    if event_types:  # Home Assistant refuses an event entity without any
        event = {
            "name": "Water use",
            "unique_id": f"{obj}_water_use",
            "icon": "mdi:water",
            "event_types": event_types,
        }
        uses = {"state_topic": uses_topic(topic_base, home_id)}
        out.append((f"{prefix}/event/{obj}_water_use/config", event | common | uses))
    return out


def state_message(home_id: str, status: dict, water: dict | None = None) -> dict:
    """The retained per-home state the sensors read (``status`` from the daily update;
    ``water`` from :meth:`HomeAssistant.water`, left out when None)."""
    out = {
        "home_id": home_id,
        "level": status["level"],
        "phase": status["phase"],
        "calibration_day": status["calibration_day"],
        "model_version": status.get("model_version", model_version_name(0)),
        "accuracy": status.get("accuracy", {}),
    }
    if water is not None:
        out["water"] = water
    return out


def usage_between(
    conn: Connection, home_id: str, now: datetime, start: datetime, end: datetime, group: str
) -> UsagePublic:
    """``GET /v1/homes/{id}/usage?from=start&to=end&group=group`` (default threshold)."""
    return usage_report(conn, home_id, now, start=start, end=end, bucket="week", group=group)


@dataclass
class _Tally:
    """Litres per group summed over the periods counted (their sigmas added linearly: the part
    of a group's error every use shares adds so anyway; an upper bound for the rest)."""

    groupings: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    total: dict[str, float] = field(
        default_factory=lambda: {"litres": 0.0, "litres_sigma": 0.0, "count": 0, "unsized": 0}
    )

    def add(self, grouping: str, body: UsagePublic) -> None:
        rows = self.groupings.setdefault(grouping, {})
        for g in body.totals:
            _add(rows.setdefault(g.group, _zero(g.text, g.kind)), g)
        if grouping == "category":  # every use once, whatever the grouping
            self.total["litres"] += body.litres
            self.total["litres_sigma"] += body.litres_sigma
            self.total["count"] += body.count
            self.total["unsized"] += sum(g.unsized for g in body.totals)

    def merged(self, other: _Tally) -> _Tally:
        out = _Tally()
        for tally in (self, other):
            for grouping, rows in tally.groupings.items():
                into = out.groupings.setdefault(grouping, {})
                for group, row in rows.items():
                    _add(into.setdefault(group, _zero(row["text"], row["kind"])), row)
            _add(out.total, tally.total)
        return out


def _zero(text: str, kind: str) -> dict[str, Any]:
    return {
        "text": text,
        "kind": kind,
        "litres": 0.0,
        "litres_sigma": 0.0,
        "count": 0,
        "unsized": 0,
    }


def _add(into: dict[str, Any], part: UsageGroupPublic | dict[str, Any]) -> None:
    get = part.get if isinstance(part, dict) else lambda k: getattr(part, k)
    for key in ("litres", "litres_sigma", "count", "unsized"):
        into[key] += get(key)


@dataclass(frozen=True)
class _Base:
    """A full count up to ``end``, made at ``at``, valid while the home's spec version, display
    level and lumps are ``key``."""

    key: tuple
    at: datetime
    end: datetime
    first: datetime | None
    tally: _Tally


class HomeAssistant:
    """What the runtime publishes for Home Assistant, read from the database.

    Keeps, per home, the last full count of its litres (refreshed from
    :data:`RECOUNT_OVERLAP` before it on each state) and the config topics of its last
    discovery (so a sensor whose group is no longer served is removed).
    """

    def __init__(
        self,
        db: Engine,
        prefix: str,
        topic_base: str,
        sw_version: str,
        *,
        chunk_days: int = MAX_DAYS,
    ) -> None:
        self.db = db
        self.prefix = prefix
        self.base = topic_base
        self.sw_version = sw_version
        self.chunk = timedelta(days=chunk_days)  # the usage endpoint serves at most MAX_DAYS
        self._lock = threading.Lock()
        self._bases: dict[str, _Base] = {}
        self._configs: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ discovery

    def discovery(self, home_id: str) -> list[tuple[str, dict | None]]:
        """The home's configs, then an empty (removing) payload for each water sensor
        published before whose group is no longer served. The first time (after a start) that
        is every group the home's fixtures could have; a lump sensor from before the start
        stays and reads unknown (its group is not in the state)."""
        with self.db.connect() as conn:
            name = conn.execute(select(homes.c.name).where(homes.c.home_id == home_id)).scalar()
            groups = water_groups(conn, home_id)
            inventory = dashboard.fixture_inventory(conn, home_id)
        messages: list[tuple[str, dict | None]] = list(
            discovery_messages(
                self.prefix, self.base, home_id, name or home_id, self.sw_version, groups
            )
        )
        current = {topic for topic, _ in messages}
        with self._lock:
            before = self._configs.get(home_id)
            self._configs[home_id] = current
        if before is None:
            before = {
                f"{self.prefix}/sensor/{_water_object_id(home_id, g)}/config"
                for g in _groups(inventory, "valve", [])
            }
        return messages + [(topic, None) for topic in sorted(before - current)]

    # ------------------------------------------------------------------ state

    def stored_status(self, home_id: str) -> dict | None:
        """The home's status as the daily update reports it, read back (None before the
        first daily update): the status row with the newest accuracy per level."""
        with self.db.connect() as conn:
            status = load_home_status(conn, home_id)
            if status is None:
                return None
            accuracy = dashboard.latest_accuracy(conn, home_id)
        status["accuracy"] = {
            level: {k: a[k] for k in ("estimate", "lower_bound", "n_labels")}
            for level, a in accuracy.items()
        }
        return status

    def state(
        self, home_id: str, status: dict, now: datetime, *, recount: bool = False
    ) -> tuple[str, dict]:
        """``(topic, payload)`` of the home's retained state with its water totals."""
        water = self.water(home_id, now, recount=recount)
        return state_topic(self.base, home_id), state_message(home_id, status, water)

    def water(self, home_id: str, now: datetime, *, recount: bool = False) -> dict | None:
        """Litres per group since the home's first use, up to ``now`` (None if that failed:
        the state then goes without, and the sensors read unknown)."""
        try:
            with self.db.connect() as conn:
                return self._water(conn, home_id, now, recount)
        except Exception:
            _LOGGER.exception("counting the water of %s failed", home_id)
            return None

    def _water(self, conn: Connection, home_id: str, now: datetime, recount: bool) -> dict:
        status = dashboard.home_status_row(conn, home_id) or {}
        display = dashboard.shown_level(status)
        lumps = dashboard.shown_lumps(status)
        # a new spec or flow calibration (they size the litres) or level or lumps (the
        # grouping): count again
        changed = conn.execute(select(homes.c.updated_at).where(homes.c.home_id == home_id))
        calibrated = latest_calibration_id(conn, home_id)
        key = (changed.scalar(), calibrated, display, tuple(tuple(lump) for lump in lumps))
        groupings = ("category", "fixture") if display in FIXTURE_LEVELS else ("category",)
        with self._lock:
            base = self._bases.get(home_id)
        # counted in full: when asked (daily update), the first time, while there was nothing
        # to count (a backlog may come in with any start time), after a change of ``key``
        if recount or base is None or base.first is None or base.key != key or base.at > now:
            first = first_use_at(conn, home_id)
            end = now - RECOUNT_OVERLAP
            base = _Base(
                key, now, end, first, self._count(conn, home_id, now, first, end, groupings)
            )
            with self._lock:
                self._bases[home_id] = base
        recent = self._count(conn, home_id, now, base.end, now, groupings)
        tally = base.tally.merged(recent)
        out: dict[str, Any] = {
            "since": None if base.first is None else base.first.isoformat(),
            "as_of": now.isoformat(),
            "unit": WATER_UNIT,
            "display_level": display,
            **{k: round(v, 3) for k, v in tally.total.items()},
        }
        inventory = dashboard.fixture_inventory(conn, home_id)
        for g in _groups(inventory, display, lumps):  # a sensor's group reads 0, not unknown
            tally.groupings.setdefault(g.grouping, {}).setdefault(g.group, _zero(g.text, g.kind))
        for grouping in groupings:
            out[grouping] = {
                group: {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
                for group, row in tally.groupings[grouping].items()
            }
        return out

    def _count(
        self,
        conn: Connection,
        home_id: str,
        now: datetime,
        start: datetime | None,
        end: datetime,
        groupings: Sequence[str],
    ) -> _Tally:
        """The usage endpoint's totals over ``[start, end)``, in ranges it serves."""
        tally = _Tally()
        t = start
        while t is not None and t < end:
            stop = min(t + self.chunk, end)
            for grouping in groupings:
                tally.add(grouping, usage_between(conn, home_id, now, t, stop, grouping))
            t = stop
        return tally

    # ------------------------------------------------------------------ use events

    def use_events(
        self, home_id: str, use_ids: Sequence[str], now: datetime
    ) -> list[tuple[str, dict]]:
        """``(topic, payload)`` of one event per newly classified use (those that started at
        most :data:`USE_EVENT_MAX_AGE` before ``now``, the newest :data:`MAX_USE_EVENTS`).

        Each is the usage endpoint over the instant the use started: its group at the category
        grouping (the ``event_type``), its fixture or lump at the fixture level and finer, its
        litres. Uses that started at the same instant share one message per group (``count``;
        ``use_id`` null).
        """
        topic = uses_topic(self.base, home_id)
        out = []
        with self.db.connect() as conn:
            fine = (
                dashboard.shown_level(dashboard.home_status_row(conn, home_id) or {})
                in FIXTURE_LEVELS
            )
            loaded = load_uses(conn, home_id, only=list(use_ids))
            recent = [u for u in loaded if u.t >= now - USE_EVENT_MAX_AGE][-MAX_USE_EVENTS:]
            for t, same in groupby(recent, key=lambda u: u.t):
                same = list(same)
                instant = (t, t + timedelta(microseconds=1))
                by_category = usage_between(conn, home_id, now, *instant, "category")
                by_fixture = (
                    usage_between(conn, home_id, now, *instant, "fixture") if fine else None
                )
                for g in by_category.totals:
                    out.append((topic, _use_event(same, g, by_category, by_fixture)))
        return out


def _use_event(
    same: list[WaterUse], g: UsageGroupPublic, body: UsagePublic, by_fixture: UsagePublic | None
) -> dict:
    tz = ZoneInfo(body.timezone)
    single = same[0] if len(same) == 1 else None
    fixture = (
        by_fixture.totals[0] if by_fixture is not None and len(by_fixture.totals) == 1 else None
    )

    def local(t: datetime | None) -> str | None:
        return None if t is None else t.astimezone(tz).isoformat()

    return {
        "event_type": g.group,
        "use_id": single.use_id if single else None,
        "count": g.count,
        "display_level": body.display_level,
        "category": g.group,
        "category_text": g.text,
        "fixture": fixture.group if fixture else None,
        "fixture_text": fixture.text if fixture else None,
        "litres": None if g.unsized else g.litres,
        "litres_sigma": None if g.unsized else g.litres_sigma,
        "start": local(single.t_open if single else same[0].t),
        "end": local(single.t_close) if single else None,
        "lines": list(single.lines) if single else None,
    }
