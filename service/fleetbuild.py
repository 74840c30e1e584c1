"""Rebuilding the fleet from the deployment's calibrated homes (the leader's job and
``atlas fleet rebuild``).

Why every rebuild reads each contributing home's own data rather than combining per-home
shares stored earlier: :func:`atlas.fleet.build_fleet` asks the homes in rounds, and three of
its four rounds depend on the fleet's answers to the earlier ones. The code moments are taken
under the fleet codebook clustered from *every* home's atoms; the category statistics under the
PCA of those moments; the stand-in counts under a category model built from the *other* homes'
statistics. A share computed when a home was last refitted would be under another fleet's
codebook and could not be summed. Only the atoms and the accuracy counts stand alone. So a
rebuild reads each home once (its engine snapshot and its waveforms), as
:class:`atlas.fleet.LocalHome`, inside the deployment, and stores only the fleet built from
their aggregates (:mod:`service.storage.fleets`).

A rebuild takes no home's lock (each home is read in one snapshot-consistent transaction) and
writes only the new version and the pruning: intake and classification go on while it runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from atlas.engine import CalibrationEngine
from atlas.fleet import FleetConfig, LocalHome, build_fleet
from atlas.homespec import parse_home_spec
from service.settings import FleetSettings
from service.storage.enginestate import load_engine_state
from service.storage.events import load_events, utc
from service.storage.fleets import prune_fleet_versions, save_fleet_version
from service.storage.homefleet import contributing_homes
from service.storage.schema import homes

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildOutcome:
    """What a rebuild did: the new version (None: none built, ``reason`` says why)."""

    version: int | None
    n_homes: int  # homes whose aggregates went in
    n_calibrated: int  # calibrated homes not opted out
    build_s: float
    cpu_s: float  # of the rebuilding thread
    pruned: tuple[int, ...] = ()
    reason: str = ""


def rebuild_fleet(
    db: Engine, settings: FleetSettings, now: datetime, config: FleetConfig | None = None
) -> RebuildOutcome:
    """Build a fleet version from the homes calibrated by ``now`` (service time) that did not
    opt out, store it and prune old versions (see the module docstring)."""
    config = config or FleetConfig()
    wall, cpu = time.perf_counter(), time.thread_time()
    with db.connect() as conn:
        ids = contributing_homes(conn, now - timedelta(days=settings.calibrated_days))
    local: list[LocalHome] = []
    if len(ids) >= settings.min_homes:  # else reading them would be for nothing
        local = [h for h in (read_home(db, i) for i in ids) if h is not None]
        local = [h for h in local if _shares_atoms(h, config)]
    prior, reason = None, ""
    if len(local) < settings.min_homes:
        reason = f"{len(local)} calibrated homes with data; fleet.min_homes={settings.min_homes}"
    else:
        try:
            prior = build_fleet(local, config)
        except ValueError as exc:  # e.g. too few labeled uses across the homes yet
            reason = f"build_fleet: {exc}"
    build_s, cpu_s = time.perf_counter() - wall, time.thread_time() - cpu
    if prior is None:
        _LOGGER.info("no fleet version built: %s", reason)
        return RebuildOutcome(None, len(local), len(ids), build_s, cpu_s, reason=reason)
    with db.begin() as conn:
        version = save_fleet_version(conn, prior, built_at=now, build_s=build_s, cpu_s=cpu_s)
        pruned = tuple(prune_fleet_versions(conn, settings.keep_versions))
    _LOGGER.info(
        "fleet version %d from %d homes: %.1f s, %.1f s CPU; pruned %s",
        version,
        len(local),
        build_s,
        cpu_s,
        list(pruned),
    )
    return RebuildOutcome(version, len(local), len(ids), build_s, cpu_s, pruned)


def read_home(db: Engine, home_id: str) -> LocalHome | None:
    """The home's uses, waveforms and labels as its engine holds them (None: no engine yet).

    One transaction that sees one state of the database throughout, so a snapshot chain
    pruned by the home's owner meanwhile is never read half.
    """
    level = "REPEATABLE READ" if db.dialect.name == "postgresql" else "SERIALIZABLE"
    with db.connect().execution_options(isolation_level=level) as conn:
        row = conn.execute(
            select(homes.c.spec, homes.c.created_at).where(homes.c.home_id == home_id)
        ).one()
        found = load_engine_state(conn, home_id)
        if found is None:
            return None
        spec = parse_home_spec(row.spec)
        engine = CalibrationEngine.restore(spec, found.state, deltas=found.deltas)
        uses = list(engine.log.sorted)
        events = load_events(conn, [e for u in uses for e in u.event_ids], home_id)
    return LocalHome(
        home_id, spec, utc(row.created_at), uses, events, engine.labels, dict(engine.log.features)
    )


def _shares_atoms(home: LocalHome, config: FleetConfig) -> bool:
    """Whether the home can fit the codebook whose atoms it shares (cached by the home, so the
    build does not fit it again); a home with too few waves is left out, not the fleet."""
    try:
        home.atoms(config.codebook_params, config.random_state)
    except ValueError as exc:
        _LOGGER.warning("fleet rebuild leaves out %s: %s", home.home_id, exc)
        return False
    return True
