"""A simulated homeowner who answers label requests, imperfectly, like a real one.

Real people ignore some notifications, answer hours later, and misremember which of two similar
fixtures they used (the upstairs or the downstairs toilet, the hot or the mixed position). The
learning loop must cope with all three, so later issues measure it against this model.

Answers are deterministic: they depend only on the seed and the request's use id, not on the
order in which requests arrive, so a re-run asks and gets the same answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NOT_SURE = "not sure"


@dataclass(frozen=True)
class Answer:
    """The homeowner's reaction to one request.

    ``choice`` is None when they never answer; ``delay_s`` is how long after the request the
    answer arrives; ``correct`` says whether ``choice`` is the truth (for benchmarks only).
    """

    choice: str | None
    delay_s: float
    correct: bool

    @property
    def answered(self) -> bool:
        return self.choice is not None


@dataclass(frozen=True)
class Homeowner:
    """Answer model.

    Parameters
    ----------
    p_no_answer : float, default=0.2
        Probability of ignoring a request.
    p_late : float, default=0.3
        Probability that an answer comes late (otherwise within ``prompt_delay_s``).
    late_median_s : float, default=4 * 3600
        Median delay of a late answer (log-normal, sigma ``late_sigma``).
    late_sigma : float, default=1.0
    prompt_delay_s : float, default=120
        Upper bound of a prompt answer's delay (uniform).
    p_wrong : float, default=0.1
        Probability of answering with a similar wrong choice (same category, or same fixture)
        when one is offered; otherwise any other offered choice.
    p_not_sure : float, default=0.05
        Probability of answering "not sure" when that choice is offered.
    seed : int, default=0
    """

    p_no_answer: float = 0.2
    p_late: float = 0.3
    late_median_s: float = 4 * 3600.0
    late_sigma: float = 1.0
    prompt_delay_s: float = 120.0
    p_wrong: float = 0.1
    p_not_sure: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("p_no_answer", "p_late", "p_wrong", "p_not_sure"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} should be in [0, 1].")
        for name in ("late_median_s", "prompt_delay_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} should be > 0.")

    def _rng(self, use_id: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}:{use_id}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def answer(
        self,
        truth: dict,
        choices: Sequence[str],
        category_of_fixture: Mapping[str, str] | None = None,
    ) -> Answer:
        """Answer a request about the use described by ``truth`` (a run file's truth dict).

        ``choices`` are valve ids (``fixture/valve``), fixture ids or category names, plus
        optionally :data:`NOT_SURE`; the true label is the one at the level the choices use.
        ``category_of_fixture`` (e.g. ``Hierarchy.category_of_fixture``) tells which fixtures
        are alike; without it, fixture ids with the same last word ("bath1-toilet",
        "bath2-toilet") are taken as alike.
        """
        if not choices:
            raise ValueError("choices is empty; a request must offer at least one answer.")
        rng = self._rng(str(truth["use_id"]))
        right = _true_choice(truth, choices)
        draws = rng.random(4)
        if draws[0] < self.p_no_answer:
            return Answer(None, float("inf"), False)
        if draws[1] < self.p_late:
            delay = float(self.late_median_s * np.exp(rng.normal(0.0, self.late_sigma)))
        else:
            delay = float(rng.uniform(5.0, self.prompt_delay_s))
        if NOT_SURE in choices and draws[2] < self.p_not_sure:
            return Answer(NOT_SURE, delay, False)
        others = [c for c in choices if c not in (right, NOT_SURE)]
        if right is None or (others and draws[3] < self.p_wrong):
            pool = [c for c in others if _similar(c, right, truth, category_of_fixture)] or others
            if not pool:
                return Answer(NOT_SURE if NOT_SURE in choices else choices[0], delay, False)
            return Answer(pool[int(rng.integers(len(pool)))], delay, False)
        return Answer(right, delay, True)


def _true_choice(truth: dict, choices: Sequence[str]) -> str | None:
    for key in ("valve", "fixture", "category"):
        if truth.get(key) in choices:
            return str(truth[key])
    return None


def _similar(
    choice: str, right: str | None, truth: dict, categories: Mapping[str, str] | None
) -> bool:
    """Two valves of one fixture, or two fixtures of the same kind (the other toilet...)."""
    if right is None:
        return False
    fixture = truth.get("fixture", "")
    if right == truth.get("valve"):
        choice_fixture = choice.split("/", 1)[0]
        if choice_fixture == fixture:
            return True
        return choice.split("/", 1)[-1] == right.split("/", 1)[-1] and _same_kind(
            choice_fixture, fixture, categories
        )
    return _same_kind(choice, fixture, categories)


def _same_kind(a: str, b: str, categories: Mapping[str, str] | None) -> bool:
    """Two different fixtures of the same category ("bath1-toilet" ~ "bath2-toilet")."""
    if a == b:
        return False
    if categories is not None and a in categories and b in categories:
        return str(categories[a]) == str(categories[b])
    return a.rsplit("-", 1)[-1] == b.rsplit("-", 1)[-1]
