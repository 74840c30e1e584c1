"""Fleet transfer: what calibrated homes teach a new home, as parameters only.

* :func:`build_fleet` reads aggregates from :class:`LocalHome` objects (opted-out homes are
  skipped) and returns a :class:`FleetPrior`;
* ``CalibrationEngine(spec, installed_at, config, fleet=prior)`` uses it: the fleet codebook
  from day 1, the fleet category model as virtual evidence, stand-in training examples for
  the valves the fleet measured it can pick reliably, and the prior per level and week for
  the accuracy estimates;
* ``prior.checklist(spec)`` is the guided checklist without the items the stand-ins cover.
  See ``docs/fleet.md``.
"""

from atlas.fleet.accuracy import AccuracyCount, FleetAccuracyPrior, fit_population
from atlas.fleet.category import CategoryStats, FleetCategoryModel, transfer_features
from atlas.fleet.codebook import CodeMoments, fleet_atoms, fleet_projection
from atlas.fleet.home import LocalHome
from atlas.fleet.prior import FleetConfig, FleetPrior, build_fleet
from atlas.fleet.standin import StandinCounts, StandinTrust, fleet_checklist

__all__ = [
    "AccuracyCount",
    "CategoryStats",
    "CodeMoments",
    "FleetAccuracyPrior",
    "FleetCategoryModel",
    "FleetConfig",
    "FleetPrior",
    "LocalHome",
    "StandinCounts",
    "StandinTrust",
    "build_fleet",
    "fit_population",
    "fleet_atoms",
    "fleet_checklist",
    "fleet_projection",
    "transfer_features",
]
