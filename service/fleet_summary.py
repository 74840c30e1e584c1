"""What a stored fleet version holds, in plain terms: for ``GET /v1/fleet`` and
``atlas fleet show`` (one description, so the API and the operator's command agree)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection

from atlas.fleet import FleetPrior
from service.storage.fleets import FleetVersion, fleet_users, list_fleet_versions, load_fleet


def stored_fleet_summary(
    conn: Connection, *, accuracy_prior_used: bool, version: int | None = None
) -> dict[str, Any] | None:
    """:func:`fleet_summary` of stored ``version`` (default: the newest); None: not stored."""
    stored = [v for v in list_fleet_versions(conn) if version in (None, v.version)]
    if not stored:
        return None
    return fleet_summary(
        stored[0],
        load_fleet(conn, stored[0].version),
        homes_using=fleet_users(conn).get(stored[0].version, 0),
        accuracy_prior_used=accuracy_prior_used,
    )


def fleet_summary(
    stored: FleetVersion, prior: FleetPrior, *, homes_using: int, accuracy_prior_used: bool
) -> dict[str, Any]:
    """The fields of :class:`service.api.schemas.fleet.FleetPublic` for one version."""
    model, trust = prior.category_model, prior.standin
    keys = sorted(trust.alone_ | trust.grouped_) if trust is not None else []
    return {
        **asdict(stored),
        "homes_using": homes_using,
        "codebook": prior.projection is not None,
        "categories": [] if model is None else list(model.categories_),
        "accuracy_prior_used": accuracy_prior_used,
        "accuracy_prior": [
            {
                "layout": layout,
                "level": level,
                "week": week,
                "mean": beta.mean,
                "strength": beta.strength,
                "n_homes": n_homes,
            }
            for layout, level, week, beta, n_homes in (
                [] if prior.accuracy is None else prior.accuracy.fitted()
            )
        ],
        "skippable": [
            {
                "category": category,
                "lines": list(lines),
                "alone": trust is not None and (category, lines) in trust.alone_,
                "grouped": trust is not None and (category, lines) in trust.grouped_,
            }
            for category, lines in keys
        ],
    }
