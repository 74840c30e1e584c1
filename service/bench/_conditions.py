"""The conditions a calibration benchmark runs under: the homeowner, the plumbing, the settings.

Shared by ``atlas bench calibration`` and ``atlas bench fleet-transfer`` so that a stress run
(e.g. ``--p-no-answer 0.4 --p-wrong 0.2 --variation 1.3``) means the same in both.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from atlas.engine import EngineConfig
from atlas.engine.config import CODEBOOK_MODES
from simulator.homeowner import Homeowner

_HOMEOWNER_RATES = ("p_no_answer", "p_late", "p_wrong", "p_not_sure")


def _optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def add_condition_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for the simulated homeowner's rates, the plumbing spread and the estimate settings."""
    defaults = Homeowner()
    group = parser.add_argument_group("conditions (stress tests)")
    for name in _HOMEOWNER_RATES:
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=getattr(defaults, name),
            help=f"simulated homeowner: {name} (default {getattr(defaults, name)})",
        )
    group.add_argument("--variation", type=float, default=1.0, help="plumbing spread (1.3: stress)")
    config = EngineConfig()
    group.add_argument(
        "--confidence",
        type=float,
        default=config.confidence,
        help=f"one-sided confidence of the lower bounds (default {config.confidence})",
    )
    group.add_argument(
        "--codebook-mode",
        choices=sorted(CODEBOOK_MODES),
        default=config.codebook_mode,
        help=f"how the codebook encodes a wave (default {config.codebook_mode})",
    )
    group.add_argument(
        "--day-one-prior",
        action=argparse.BooleanOptionalAction,
        default=config.day_one_prior,
        help=f"start from the day-one prior (default {config.day_one_prior})",
    )
    group.add_argument(
        "--day-one-discrepancy-sd",
        type=float,
        default=config.day_one_discrepancy_sd,
        help="how far a real home may sit from the simulated homes "
        f"(default {config.day_one_discrepancy_sd})",
    )
    group.add_argument(
        "--prior-check",
        type=_optional_float,
        default=config.prior_check,
        help=f"prior-predictive level that drops a prior, or 'none' (default {config.prior_check})",
    )


def homeowner_from_args(args: argparse.Namespace) -> Homeowner:
    return Homeowner(
        seed=args.homeowner_seed, **{name: getattr(args, name) for name in _HOMEOWNER_RATES}
    )


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    return replace(
        EngineConfig(),
        confidence=args.confidence,
        codebook_mode=args.codebook_mode,
        day_one_prior=args.day_one_prior,
        day_one_discrepancy_sd=args.day_one_discrepancy_sd,
        prior_check=args.prior_check,
    )


def describe_conditions(args: argparse.Namespace) -> str:
    """One line for a report's header."""
    rates = ", ".join(f"{name} {getattr(args, name):g}" for name in _HOMEOWNER_RATES)
    return (
        f"homeowner seed {args.homeowner_seed} ({rates}), variation {args.variation:g}, "
        f"confidence {args.confidence:g}, codebook {args.codebook_mode}, "
        f"day-one prior {args.day_one_prior} "
        f"(discrepancy sd {args.day_one_discrepancy_sd:g}), "
        f"prior check {args.prior_check}"
    )
