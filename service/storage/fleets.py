"""Fleet versions in ``fleet_versions``: each a :class:`atlas.fleet.FleetPrior` as JSON + arrays.

Why versions: a running home keeps the fleet version it has until its next codebook refit
(docs/fleet.md, "In the service"), and a worker that restores a home's engine must hand it
exactly that version, so a rebuild adds a version instead of replacing one. A version holds
what ``FleetPrior.to_dict`` holds, nothing about any one home, encoded by
:mod:`service.storage.jsonarrays` (never pickle). Pruning keeps the newest versions and every
version a home's engine still uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, func, insert, select

from service.storage.jsonarrays import decode_state, encode_state
from service.storage.schema import fleet_versions, home_fleet

if TYPE_CHECKING:
    from atlas.fleet import FleetPrior


@dataclass(frozen=True)
class FleetVersion:
    """One stored version, without its blob."""

    version: int
    built_at: datetime
    n_homes: int
    format: str
    build_s: float
    cpu_s: float


def save_fleet_version(
    conn: Connection, prior: FleetPrior, *, built_at: datetime, build_s: float, cpu_s: float
) -> int:
    """Store ``prior`` as the next version (1, 2, ...); returns it. Two rebuilds racing get a
    primary-key error on the version rather than one silently replacing the other."""
    state = prior.to_dict()
    latest = latest_fleet_version(conn) or 0
    conn.execute(
        insert(fleet_versions).values(
            version=latest + 1,
            built_at=built_at,
            n_homes=prior.n_homes,
            format=state["format"],
            build_s=build_s,
            cpu_s=cpu_s,
            blob=encode_state(state),
        )
    )
    return latest + 1


def prune_fleet_versions(conn: Connection, keep: int) -> list[int]:
    """Delete the versions older than the newest ``keep`` that no home's engine uses (a home's
    start version may go: its skipped checklist items are stored with the home); returns them."""
    if keep < 1:
        raise ValueError(f"keep={keep!r} should be >= 1")
    newest = conn.execute(
        select(fleet_versions.c.version).order_by(fleet_versions.c.version.desc()).limit(keep)
    ).scalars()
    used = conn.execute(select(home_fleet.c.version).where(home_fleet.c.version.is_not(None)))
    kept = set(newest) | set(used.scalars())
    gone = [v for v in conn.execute(select(fleet_versions.c.version)).scalars() if v not in kept]
    if gone:
        conn.execute(delete(fleet_versions).where(fleet_versions.c.version.in_(gone)))
    return sorted(gone)


def latest_fleet_version(conn: Connection) -> int | None:
    """The newest stored version (None: no fleet yet)."""
    return conn.execute(select(func.max(fleet_versions.c.version))).scalar_one()


def list_fleet_versions(conn: Connection) -> list[FleetVersion]:
    """Every stored version, newest first."""
    cols = [c for c in fleet_versions.c if c.name != "blob"]
    rows = conn.execute(select(*cols).order_by(fleet_versions.c.version.desc()))
    return [FleetVersion(**r._mapping) for r in rows]


def fleet_users(conn: Connection) -> dict[int, int]:
    """Per version, how many homes' engines use it."""
    rows = conn.execute(
        select(home_fleet.c.version, func.count())
        .where(home_fleet.c.version.is_not(None))
        .group_by(home_fleet.c.version)
    )
    return {version: n for version, n in rows}


def load_fleet(conn: Connection, version: int) -> FleetPrior:
    """The stored ``version`` (KeyError when there is none: never built, or pruned)."""
    # here, not at the top: atlas.fleet pulls in scikit-learn, which the intake (it registers
    # homes through service.storage.homes) does not need at start-up
    from atlas.fleet import FleetPrior

    blob = conn.execute(
        select(fleet_versions.c.blob).where(fleet_versions.c.version == version)
    ).scalar_one_or_none()
    if blob is None:
        raise KeyError(f"fleet version {version} is not stored")
    return FleetPrior.from_dict(decode_state(blob))
