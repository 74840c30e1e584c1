"""Hierarchical Beta-binomial prior over per-home accuracy, estimated from calibrated homes.

WHY: certifying ">= 85%" from one home's own uniformly drawn labels needs ~38/40 correct
(docs/estimation.md), far more than the protocol asks for. Homes of a fleet are exchangeable
draws from one population of "how accurate does the model get in a home by week w"; a Beta
prior fitted to that population (empirical Bayes) is honest extra information, and it stays
honest only if

* it is fitted per level *and per week* (a home in week 2 is compared with other homes in
  their week 2, not with their week-4 accuracy),
* each home enters through its own estimate's effective counts (the IPW effective sample size,
  never more than its labels), and
* its strength ``a + b`` is capped at the number of homes behind it: a fleet of 10 homes never
  counts as more than 10 pseudo-labels, however alike they look.

The fitted prior is a :class:`atlas.estimate.BetaPrior`, handed to
:func:`atlas.estimate.estimate_accuracy` by the engine; nothing here sees a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln

from atlas.domain import LEVELS
from atlas.estimate import BetaPrior


@dataclass(frozen=True)
class AccuracyCount:
    """One home's accuracy evidence at one level and week: effective successes and trials.

    An aggregate (two numbers), the only accuracy information a home shares with the fleet.
    """

    level: str
    week: int
    successes: float
    trials: float

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r} should be one of {LEVELS}.")
        if self.week < 1:
            raise ValueError(f"week={self.week!r} should be >= 1.")
        if not 0 <= self.successes <= self.trials:
            raise ValueError(
                f"successes={self.successes!r} should be in [0, trials={self.trials!r}]."
            )


def _neg_log_marginal(log_ab: np.ndarray, x: np.ndarray, n: np.ndarray) -> float:
    a, b = np.exp(log_ab)
    # Beta-binomial marginal without the binomial coefficient (constant in a, b).
    return -float(np.sum(betaln(a + x, b + n - x) - betaln(a, b)))


def fit_beta_binomial(
    successes: Sequence[float],
    trials: Sequence[float],
    *,
    max_strength: float | None = None,
) -> BetaPrior:
    """Empirical-Bayes Beta(a, b) for per-home rates from ``successes`` of ``trials`` per home.

    Maximises the Beta-binomial marginal likelihood (started from the method of moments). The
    strength ``a + b`` is capped at ``max_strength`` (default: the number of homes) keeping the
    mean: with few homes the between-home spread is under-estimated more often than not, and
    an over-confident prior is what would break the bound's coverage.

    Parameters
    ----------
    successes, trials : sequence of float
        Per home; non-integer effective counts are allowed (IPW ``p * n_eff``, ``n_eff``).
    max_strength : float or None, default=None
        Cap on ``a + b``; None: the number of homes with ``trials > 0``.

    Examples
    --------
    >>> prior = fit_beta_binomial([18, 17, 19, 16], [20, 20, 20, 20])
    >>> round(prior.a / (prior.a + prior.b), 3), prior.a + prior.b <= 4
    (0.875, True)
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError(f"successes {x.shape} and trials {n.shape} should be 1-d, same length.")
    keep = n > 0
    x, n = x[keep], n[keep]
    if x.size < 2:
        raise ValueError(f"{x.size} home(s) with trials > 0; a fleet prior needs >= 2.")
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("successes should lie in [0, trials] for every home.")
    cap = float(x.size if max_strength is None else max_strength)
    if cap <= 0:
        raise ValueError(f"max_strength={max_strength!r} should be > 0.")
    rates = (x + 0.5) / (n + 1.0)
    mean = float(np.clip(rates.mean(), 1e-3, 1 - 1e-3))
    var = float(rates.var(ddof=1))
    strength0 = mean * (1 - mean) / var - 1 if var > 0 else cap
    strength0 = float(np.clip(strength0, 0.5, 1e4))
    start = np.log([mean * strength0, (1 - mean) * strength0])
    res = minimize(_neg_log_marginal, start, args=(x, n), method="Nelder-Mead")
    a, b = np.exp(res.x) if res.success else np.exp(start)
    strength = a + b
    if strength > cap:
        a, b = a * cap / strength, b * cap / strength
    return BetaPrior(float(a), float(b))


class FleetAccuracyPrior:
    """Beta priors per (layout, level, week), fitted from the homes' :class:`AccuracyCount` lists.

    Parameters
    ----------
    counts : mapping of home id to sequence of AccuracyCount
    min_homes : int, default=3
        Fewer homes with evidence at a (level, week): no prior there (``prior`` returns None).
    layouts : mapping of home id to layout key, or None
        :func:`atlas.day_one.layout_key` of each home; priors are also fitted per layout
        class.

    A week later than any fitted one uses the latest fitted week of that level (accuracy grows
    with labels, so an earlier week's prior is the conservative choice); an earlier week than
    any fitted one gets None.
    """

    def __init__(
        self,
        counts: Mapping[str, Sequence[AccuracyCount]],
        min_homes: int = 3,
        layouts: Mapping[str, str] | None = None,
    ) -> None:
        if min_homes < 2:
            raise ValueError(f"min_homes={min_homes!r} should be >= 2.")
        self.min_homes = min_homes
        grouped: dict[tuple[str | None, str, int], list[AccuracyCount]] = {}
        for home, home_counts in counts.items():
            scopes = [None] if layouts is None else [None, layouts[home]]
            for c in home_counts:
                for scope in scopes:
                    grouped.setdefault((scope, c.level, c.week), []).append(c)
        self.priors_: dict[tuple[str | None, str, int], BetaPrior] = {}
        self.n_homes_: dict[tuple[str | None, str, int], int] = {}
        for key, cs in grouped.items():
            with_data = [c for c in cs if c.trials > 0]
            if len(with_data) < min_homes:
                continue
            self.priors_[key] = fit_beta_binomial(
                [c.successes for c in with_data], [c.trials for c in with_data]
            )
            self.n_homes_[key] = len(with_data)

    def prior(self, level: str, week: int, layout: str | None = None) -> BetaPrior | None:
        """The prior for a home in ``week`` at ``level`` (None: the fleet cannot support one).

        ``layout``: only homes of that layout class; None: all homes.
        """
        if level not in LEVELS:
            raise ValueError(f"level={level!r} should be one of {LEVELS}.")
        weeks = sorted(w for s, lv, w in self.priors_ if s == layout and lv == level and w <= week)
        return self.priors_[(layout, level, weeks[-1])] if weeks else None
