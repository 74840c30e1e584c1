"""What a fleet of calibrated homes knows about a new home's accuracy (hierarchical Bayes).

WHY: certifying ">= 85%" from one home's own uniformly drawn labels needs ~38/40 correct
(docs/estimation.md), far more than the protocol asks for. Homes of a fleet are exchangeable
draws from one population of "how accurate does the model get in a home by week w"; what the
fleet has seen of that population is honest extra information, and it stays honest only if

* it is fitted per level *and per week* (a home in week 2 is compared with other homes in
  their week 2, not with their week-4 accuracy),
* each home enters through its own estimate's effective counts (the IPW effective sample size,
  never more than its labels), and
* the fleet's doubt about its population is kept: the population is Beta(m s, (1 - m) s) with
  mean ``m`` and strength ``s`` unknown; their posterior given the homes' counts (a grid, with
  the hyperprior p(m, s) ~ s^(-3/2) of Gelman et al., Bayesian Data Analysis, 3rd ed., 5.3)
  is integrated out, so a new home's prior is a mixture of Betas. A fleet whose homes agree
  closely gives a strong prior (many pseudo-labels, more than it has homes); a small or
  spread-out fleet a weak one, without a cap to tune.

The fitted prior is a :class:`atlas.estimate.BetaMixturePrior`, handed to
:func:`atlas.estimate.estimate_accuracy` by the engine; nothing here sees a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln

from atlas.domain import LEVELS
from atlas.estimate import BetaMixturePrior


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


#: The population's mean accuracy: midpoints of 200 equal cells of (0, 1).
MEAN_GRID = (np.arange(200) + 0.5) / 200
#: The population's strength ``a + b`` (a spread from sd ~0.35 down to ~0.005 at m = 0.9),
#: log-spaced, so each cell's hyperprior mass is ``s^(-3/2) * s = s^(-1/2)``.
STRENGTH_GRID = np.geomspace(1.0, 3000.0, 40)
#: Components lighter than this share of the heaviest are dropped (they change no bound).
PRUNE_BELOW = 1e-5


def fit_population(
    successes: Sequence[float], trials: Sequence[float], *, discrepancy_sd: float = 0.0
) -> BetaMixturePrior:
    """The predictive prior of a new home's accuracy, given ``successes`` of ``trials`` per home.

    Posterior over (mean, strength) on the grid, from the Beta-binomial likelihood of each
    home's counts (non-integer effective counts are allowed) and the hyperprior above; the
    result is the mixture of the grid's Betas with those posterior weights.

    Parameters
    ----------
    successes, trials : sequence of float
        Per home; IPW effective counts ``p * n_eff``, ``n_eff``. Homes with no trials are left
        out.
    discrepancy_sd : float, default=0.0
        Added in quadrature to every component's spread (keeping its mean): how far the truth
        of a new home may sit from what the fleet's homes *measured*. Their counts come from
        the uses a homeowner can be asked about (paired, not overlapping another use, recent
        enough to remember), which are easier than all uses: on replayed homes the fleet's
        category rate was 5 points above the truth in apartments (docs/fleet.md), and a prior
        that trusts it covers 76% of home-days at a nominal 90%.

    Examples
    --------
    >>> prior = fit_population([18, 17, 19, 16], [20, 20, 20, 20])
    >>> round(prior.mean, 2), prior.strength < 40
    (0.86, True)
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
    m, s = np.meshgrid(MEAN_GRID, STRENGTH_GRID, indexing="ij")
    a, b = (m * s).ravel(), ((1.0 - m) * s).ravel()
    log_like = (betaln(a[:, None] + x, b[:, None] + n - x) - betaln(a, b)[:, None]).sum(axis=1)
    log_post = log_like - 0.5 * np.log(s.ravel())
    w = np.exp(log_post - log_post.max())
    kept = w >= PRUNE_BELOW
    w = w[kept] / w[kept].sum()
    a, b = _widen(a[kept], b[kept], discrepancy_sd)
    return BetaMixturePrior(tuple(a), tuple(b), tuple(w))


def _widen(a: np.ndarray, b: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Each Beta with ``sd ** 2`` more variance, same mean (strength at least 1)."""
    if sd < 0:
        raise ValueError(f"discrepancy_sd={sd!r} should be >= 0.")
    if sd == 0:
        return a, b
    m, s = a / (a + b), a + b
    var = m * (1.0 - m) / (s + 1.0) + sd**2
    s = np.maximum(m * (1.0 - m) / var - 1.0, 1.0)
    return m * s, (1.0 - m) * s


class FleetAccuracyPrior:
    """Priors per (layout, level, week), fitted from the homes' :class:`AccuracyCount` lists.

    Parameters
    ----------
    counts : mapping of home id to sequence of AccuracyCount
    min_homes : int, default=3
        Fewer homes with evidence at a (level, week): no prior there (``prior`` returns None).
    layouts : mapping of home id to layout key, or None
        :func:`atlas.day_one.layout_key` of each home; priors are also fitted per layout
        class.
    discrepancy_sd : float, default=0.0
        See :func:`fit_population`.

    A week later than any fitted one uses the latest fitted week of that level (accuracy grows
    with labels, so an earlier week's prior is the conservative choice); an earlier week than
    any fitted one gets None.
    """

    def __init__(
        self,
        counts: Mapping[str, Sequence[AccuracyCount]],
        min_homes: int = 3,
        layouts: Mapping[str, str] | None = None,
        discrepancy_sd: float = 0.0,
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
        self.priors_: dict[tuple[str | None, str, int], BetaMixturePrior] = {}
        self.n_homes_: dict[tuple[str | None, str, int], int] = {}
        for key, cs in grouped.items():
            with_data = [c for c in cs if c.trials > 0]
            if len(with_data) < min_homes:
                continue
            self.priors_[key] = fit_population(
                [c.successes for c in with_data],
                [c.trials for c in with_data],
                discrepancy_sd=discrepancy_sd,
            )
            self.n_homes_[key] = len(with_data)

    def fitted(self) -> list[tuple[str | None, str, int, BetaMixturePrior, int]]:
        """Every fitted prior as ``(layout, level, week, prior, homes)``; all homes (layout
        None) first, then each layout class, by level and week."""
        keys = sorted(self.priors_, key=lambda k: (k[0] is not None, k[0] or "", k[1], k[2]))
        return [(*k, self.priors_[k], self.n_homes_[k]) for k in keys]

    def to_dict(self) -> dict[str, Any]:
        """The fitted priors as plain types and arrays (read back by :meth:`from_dict`)."""
        return {
            "min_homes": self.min_homes,
            "priors": [
                {
                    "layout": layout,
                    "level": level,
                    "week": week,
                    "n_homes": n_homes,
                    "a": np.asarray(prior.a, dtype=float),
                    "b": np.asarray(prior.b, dtype=float),
                    "weights": np.asarray(prior.weights, dtype=float),
                }
                for layout, level, week, prior, n_homes in self.fitted()
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FleetAccuracyPrior:
        """The priors :meth:`to_dict` described, as fitted: a stored fleet keeps no home's
        counts to refit from."""
        out = cls.__new__(cls)
        out.min_homes = int(d["min_homes"])
        out.priors_, out.n_homes_ = {}, {}
        for p in d["priors"]:
            key = (p["layout"], p["level"], int(p["week"]))
            out.priors_[key] = BetaMixturePrior(
                tuple(float(x) for x in p["a"]),
                tuple(float(x) for x in p["b"]),
                tuple(float(x) for x in p["weights"]),
            )
            out.n_homes_[key] = int(p["n_homes"])
        return out

    def prior(self, level: str, week: int, layout: str | None = None) -> BetaMixturePrior | None:
        """The prior for a home in ``week`` at ``level`` (None: the fleet cannot support one).

        ``layout``: only homes of that layout class; None: all homes.
        """
        if level not in LEVELS:
            raise ValueError(f"level={level!r} should be one of {LEVELS}.")
        weeks = sorted(w for s, lv, w in self.priors_ if s == layout and lv == level and w <= week)
        return self.priors_[(layout, level, weeks[-1])] if weeks else None
