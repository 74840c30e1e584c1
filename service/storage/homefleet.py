"""Each home's fleet state in ``home_fleet``: its opt-out, and the fleet versions it runs on.

Why a row beside the spec rather than in it: the opt-out is the homeowner's choice, so an
installer replacing the spec must not undo it; and the version a home's engine uses is read
wherever that engine is restored (any worker, after any restart) and kept from pruning.

The rule (docs/fleet.md, "In the service"): a home registered while a fleet version exists
starts from the newest one; a running home moves to the newest one at its codebook refit
(:meth:`service.runtime.pipeline.HomePipeline.refit_codebook`), never in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, false, func, insert, select, update

from atlas.checklist import build_checklist
from atlas.homespec import HomeSpec
from service.storage.fleets import latest_fleet_version, load_fleet
from service.storage.schema import home_fleet, homes


@dataclass(frozen=True)
class HomeFleet:
    """A home's fleet state (the defaults: a home with no row, e.g. never registered)."""

    opt_out: bool = False
    started_version: int | None = None  # the version it was installed with
    version: int | None = None  # the version its engine uses now
    skipped: tuple[str, ...] = ()  # checklist item ids that version's stand-ins cover


def load_home_fleet(conn: Connection, home_id: str) -> HomeFleet:
    row = conn.execute(select(home_fleet).where(home_fleet.c.home_id == home_id)).first()
    if row is None:
        return HomeFleet()
    return HomeFleet(row.opt_out, row.started_version, row.version, tuple(row.skipped))


def record_home_fleet(conn: Connection, spec: HomeSpec, now: datetime, *, created: bool) -> None:
    """At registration: a new home starts from the newest fleet version (None: none yet); a
    re-registered one keeps its versions. The skipped items are recomputed for the spec."""
    current = load_home_fleet(conn, spec.home_id)
    started, version = current.started_version, current.version
    if created:
        started = version = latest_fleet_version(conn)
    skipped: list[str] = []
    if version is not None:
        kept = {item.item_id for item in load_fleet(conn, version).checklist(spec)}
        skipped = [i.item_id for i in build_checklist(spec.fixtures) if i.item_id not in kept]
    _write(conn, spec.home_id, now, started_version=started, version=version, skipped=skipped)


def set_opt_out(conn: Connection, home_id: str, opt_out: bool, now: datetime) -> None:
    """The homeowner's choice; the next rebuild reads the home's data only when False."""
    _write(conn, home_id, now, opt_out=opt_out)


def set_fleet_version(conn: Connection, home_id: str, version: int, now: datetime) -> None:
    """The version the home's engine uses from now on (saved with its snapshot)."""
    _write(conn, home_id, now, version=version)


def _write(conn: Connection, home_id: str, now: datetime, **values) -> None:
    exists = conn.execute(
        select(home_fleet.c.home_id).where(home_fleet.c.home_id == home_id)
    ).first()
    if exists:
        conn.execute(
            update(home_fleet)
            .where(home_fleet.c.home_id == home_id)
            .values(**values, updated_at=now)
        )
    else:
        row = {"skipped": [], **values}
        conn.execute(insert(home_fleet).values(home_id=home_id, updated_at=now, **row))


def contributing_homes(conn: Connection, installed_by: datetime) -> list[str]:
    """Homes a rebuild may read, by id: installed by ``installed_by`` (calibrated, by the
    setting ``fleet.calibrated_days``) and not opted out."""
    query = (
        select(homes.c.home_id)
        .outerjoin(home_fleet, home_fleet.c.home_id == homes.c.home_id)
        .where(homes.c.created_at <= installed_by)
        .where(func.coalesce(home_fleet.c.opt_out, false()).is_(false()))
        .order_by(homes.c.home_id)
    )
    return list(conn.execute(query).scalars())


def count_opted_out(conn: Connection) -> int:
    return conn.execute(
        select(func.count()).select_from(home_fleet).where(home_fleet.c.opt_out.is_(True))
    ).scalar_one()
