"""The calibration engine's settings, validated at construction.

WHY one frozen record: the live service builds it from its settings file
(``service.runtime.service.engine_config_from``) and the benchmarks from their flags; a replay
is only comparable when both pass the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atlas.levels import LevelPolicy
from atlas.timetable import TimetablePolicy

#: Codebook encodings the engine can fit (``EngineConfig.codebook_mode``): the water mode's
#: fixed segments after the onset, or codes pooled over the whole window (shift-invariant,
#: soft-threshold encoding, mean and max pooled; ``atlas bench codebook-ucr --homes``).
CODEBOOK_MODES: dict[str, dict[str, Any]] = {
    "segments": {},
    "whole_window": {
        "pyramid": (1,),
        "encoding": "threshold",
        "pooling": "split_mean",
        "hop": 16,
    },
}


@dataclass(frozen=True)
class EngineConfig:
    """Parameters of the calibration engine.

    Parameters
    ----------
    n_atoms : int, default=16
        Codebook atoms (``atlas bench codebook``: 16 was as good as 64 at a quarter the time).
    codebook_mode : {"segments", "whole_window"}, default="segments"
        How the codebook encodes and pools a wave (:data:`CODEBOOK_MODES`).
    n_code_dims : int, default=12
        Principal components of the pooled codes used as features.
    codebook_day : int, default=7
        The codebook is fitted once this local day is over (the seed protocol: week 1 saves the
        waves for the codebook) ...
    codebook_min_transients : int or None, default=None
        ... or as soon as this many transients were ingested, if set.
    codebook_refit_days : float or None, default=7
        Refit the codebook this many days after the last fit (None: never).
    strategy : str, default="atlas"
        A key of :data:`atlas.strategies.STRATEGIES`.
    strategy_params : tuple of (name, value), default=()
    n_choices : int, default=6
        Valves offered per request (most probable first); fixtures not fully covered by them
        follow, then :data:`NOT_SURE`.
    timetable, level_policy : policies of :mod:`atlas.timetable` and :mod:`atlas.levels`.
    estimate_method : {"ipw", "audit_cp", "audit_beta"}, default="ipw"
    confidence : float, default=0.9
        One-sided confidence of the lower bounds the level policy compares with the goals
        (``atlas bench decision-rules``, docs/estimation.md: with the day-one prior, 0.9 keeps
        false promotion at 1-2% of home-days where 0.95 leaves the fixture level 20 days
        behind the truth).
    day_one_prior : bool, default=True
        Start the estimates from the day-one prior (:mod:`atlas.day_one`: simulated homes of
        the home's layout class, per level and day). A fleet's own prior (``fleet=``) takes
        precedence where it has one.
    day_one_discrepancy_sd : float, default=0.05
        How far a real home may sit from the simulated homes' accuracy, added to their spread
        (:meth:`atlas.day_one.MomentPrior.beta`).
    prior_check : float or None, default=0.05
        A prior (fleet or day-one) is dropped at a level when the home's own labels are this
        improbable under it (:func:`atlas.estimate.prior_conflict`); None: never dropped.
    n_audit, temperature, uniform_mix : see :func:`atlas.sampling.draw_batch`.
    min_answer_h : float, default=6
        A request is only drawn about a use young enough to leave this long before its
        expiry (``memory_h`` after the use): a question that expires minutes after it is sent
        wastes a slot of the round.
    announcement_window_s : float, default=600
        How long after an announcement the announced use may start. An announcement is
        matched once the ingested uses reach the end of its window (a use that starts
        earlier but ends later than another in the window is ingested after it: matching
        earlier labelled the wrong one), and waits ``announcement_grace_s`` more for a use
        that started in the window but was not complete yet (a long shower).
    announcement_grace_s : float, default=3600
        The pairing's open timeout (:func:`atlas.pairing.pair_events`): a use that started in
        the window is ingested by then.
    random_state : int, default=0
        Seeds the codebook, the strategies and the draws (per round day, so a replay or a
        restored engine draws the same round).
    """

    n_atoms: int = 16
    codebook_mode: str = "segments"
    n_code_dims: int = 12
    codebook_day: int = 7
    codebook_min_transients: int | None = None
    codebook_refit_days: float | None = 7.0
    strategy: str = "atlas"
    strategy_params: tuple[tuple[str, Any], ...] = ()
    n_choices: int = 6
    timetable: TimetablePolicy = field(default_factory=TimetablePolicy)
    level_policy: LevelPolicy = field(default_factory=LevelPolicy)
    estimate_method: str = "ipw"
    confidence: float = 0.9
    day_one_prior: bool = True
    day_one_discrepancy_sd: float = 0.05
    prior_check: float | None = 0.05
    n_audit: int = 1
    temperature: float = 1.0
    uniform_mix: float = 0.2
    min_answer_h: float = 6.0
    announcement_window_s: float = 600.0
    announcement_grace_s: float = 3600.0
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.codebook_mode not in CODEBOOK_MODES:
            raise ValueError(
                f"codebook_mode={self.codebook_mode!r} should be one of {sorted(CODEBOOK_MODES)}."
            )
        if self.n_choices < 1:
            raise ValueError(f"n_choices={self.n_choices} should be >= 1.")
        if self.codebook_day < 1:
            raise ValueError(f"codebook_day={self.codebook_day} should be >= 1.")
        if not 0 <= self.min_answer_h < self.timetable.memory_h:
            raise ValueError(
                f"min_answer_h={self.min_answer_h} should be in [0, timetable.memory_h="
                f"{self.timetable.memory_h})."
            )
        if self.codebook_refit_days is not None and self.codebook_refit_days <= 0:
            raise ValueError(f"codebook_refit_days={self.codebook_refit_days} should be > 0.")
        if not 0 <= self.day_one_discrepancy_sd < 0.5:
            raise ValueError(
                f"day_one_discrepancy_sd={self.day_one_discrepancy_sd} should be in [0, 0.5)."
            )
        if self.prior_check is not None and not 0 < self.prior_check < 1:
            raise ValueError(f"prior_check={self.prior_check} should be in (0, 1) or None.")
