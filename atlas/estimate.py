"""Honest per-level accuracy estimates from the labels the homeowner gave.

Every label is scored against the prediction the model made *before* the answer arrived (a
:class:`ScoredLabel`), then learned from. Scoring after learning would measure memorisation.

Labels chosen by active learning over-sample the uses the model gets wrong, so the plain share
of correct labels under-states accuracy (and a strategy that asked about easy uses would
over-state it). Two estimators correct for the selection, both fed by :mod:`atlas.sampling`:

``audit``
    Only the uniformly drawn audit labels: an unbiased Bernoulli sample, so the exact
    Clopper-Pearson bound (``method="audit_cp"``) or a Beta posterior (``"audit_beta"``) applies.
    Valid but slow: one audit label per round.
``ipw``
    All scored labels, each weighted by the inverse of its logged inclusion probability (Hajek
    ratio estimator, the normalised Horvitz-Thompson estimator), with a Clopper-Pearson bound on
    the *effective* sample size ``n* = p(1 - p) / var`` (Korn and Graubard 1998; with the Kish
    design effect when ``p`` is 0 or 1). Uses every label, so it certifies a goal sooner.

A valve label also scores the fixture and category levels (the answer "kitchen sink, hot"
says which fixture and category too); :func:`truth_at_levels` derives them. The confidence level
is a parameter (default 0.95). An optional prior (the day-one prior of simulated homes, a Beta;
or a fleet's, a Beta mixture) is applied only when the caller passes one. See
``docs/estimation.md`` for the maths and the arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.special import betainc, betaln
from scipy.stats import beta as beta_dist
from scipy.stats import betabinom

from atlas.domain import LEVELS, Hierarchy

METHODS: tuple[str, ...] = ("audit_cp", "audit_beta", "ipw")


@dataclass(frozen=True)
class ScoredLabel:
    """One answered label, scored against the prediction made before the answer.

    Attributes
    ----------
    use_id : str
        The labelled use.
    level : str
        The finest level the answer determines ("valve", "fixture" or "category").
    predicted : Mapping[str, str]
        The model's prediction at every level, as made before the answer (each level's argmax of
        the summed probabilities, which need not be the parent of the valve argmax).
    true : Mapping[str, str]
        The answer at ``level`` and every coarser level (see :func:`truth_at_levels`).
    model_version : int
        Version of the model that made ``predicted``.
    inclusion_prob : float
        Logged inclusion probability (:class:`atlas.sampling.Batch`). Labels not drawn by the
        sampler (the guided checklist, announced uses) are no probability sample of the home's
        uses: the caller leaves them out of estimates (they still train the model).
    is_audit : bool
        Whether the use was a uniformly drawn audit item.
    """

    use_id: str
    level: str
    predicted: Mapping[str, str]
    true: Mapping[str, str]
    model_version: int
    inclusion_prob: float
    is_audit: bool

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r} should be one of {LEVELS}.")
        if not 0.0 < self.inclusion_prob <= 1.0:
            raise ValueError(f"inclusion_prob={self.inclusion_prob!r} should be in (0, 1].")
        missing = [lv for lv in _levels_covered(self.level) if lv not in self.true]
        if missing:
            raise ValueError(f"true={dict(self.true)!r} lacks level(s) {missing}.")

    def scores(self, level: str) -> bool:
        """Whether this label says anything about ``level`` (it does for coarser levels)."""
        return level in _levels_covered(self.level)

    def correct(self, level: str) -> bool:
        """Whether the prediction at ``level`` matched the answer."""
        if not self.scores(level):
            raise ValueError(f"a {self.level}-level label does not score level={level!r}.")
        return self.predicted.get(level) == self.true[level]


@dataclass(frozen=True)
class BetaPrior:
    """Beta(a, b) prior on accuracy, e.g. the day-one prior of simulated homes.

    Counts as ``a + b`` pseudo-labels; never applied unless the caller passes it.
    """

    a: float
    b: float

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"BetaPrior(a={self.a!r}, b={self.b!r}): both should be > 0.")

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def strength(self) -> float:
        """Pseudo-labels: ``a + b``."""
        return self.a + self.b


@dataclass(frozen=True)
class BetaMixturePrior:
    """A mixture of Beta(a_k, b_k) with weights w_k: what a fleet knows about a new home.

    A fleet of K homes knows its population's mean and spread only roughly. One fitted Beta
    would claim to know them exactly, and a bound built on it covers less often than nominal;
    integrating over the population's parameters (hierarchical Bayes,
    :func:`atlas.fleet.accuracy.fit_population`) gives this mixture, whose lower tail carries
    the fleet's doubt. A home's labels reweight the components by how well each explains them.
    """

    a: tuple[float, ...]
    b: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.a) == len(self.b) == len(self.weights) >= 1:
            raise ValueError(
                f"a, b and weights should have one equal length >= 1, got "
                f"{len(self.a)}, {len(self.b)}, {len(self.weights)}."
            )
        if min(self.a) <= 0 or min(self.b) <= 0 or min(self.weights) < 0:
            raise ValueError("every a and b should be > 0 and every weight >= 0.")
        if abs(sum(self.weights) - 1.0) > 1e-6:
            raise ValueError(f"weights should sum to 1, got {sum(self.weights)!r}.")

    @property
    def mean(self) -> float:
        a, b, w = _components(self)
        return float(np.dot(w, a / (a + b)))

    @property
    def strength(self) -> float:
        """Pseudo-labels of the Beta with the same mean and variance (``m(1 - m) / var - 1``)."""
        a, b, w = _components(self)
        m = a / (a + b)
        second = np.dot(w, m * (a + 1.0) / (a + b + 1.0))
        var = max(float(second) - self.mean**2, 1e-12)
        return max(self.mean * (1.0 - self.mean) / var - 1.0, 0.0)


Prior = BetaPrior | BetaMixturePrior


def _components(prior: Prior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(prior, BetaPrior):
        return np.array([prior.a]), np.array([prior.b]), np.array([1.0])
    return np.asarray(prior.a), np.asarray(prior.b), np.asarray(prior.weights)


@dataclass(frozen=True)
class AccuracyEstimate:
    """Estimated accuracy at one level, with the one-sided lower bound and what it rests on."""

    level: str
    point: float
    lower: float
    n_labels: int
    n_audit: int
    n_effective: float
    method: str
    confidence: float
    prior: Prior | None = field(default=None)
    prior_dropped: bool = False  # a prior was offered and the home's labels contradicted it
    successes: float = 0.0  # the home's own effective successes, of ``n_effective`` trials

    def describe(self) -> str:
        """One line for logs and the level policy's reason."""
        prior = ""
        if isinstance(self.prior, BetaPrior):
            prior = f", prior Beta({self.prior.a:.3g}, {self.prior.b:.3g})"
        elif self.prior is not None:
            mean, strength = self.prior.mean, self.prior.strength
            prior = f", prior mixture (mean {mean:.1%}, ~{strength:.3g} labels)"
        if self.prior_dropped:
            prior = ", prior dropped: the home's labels contradict it"
        return (
            f"{self.level}: {self.point:.1%} (>= {self.lower:.1%} at {self.confidence:.0%}, "
            f"{self.method}, {self.n_labels} labels, {self.n_audit} audit, "
            f"n_eff {self.n_effective:.1f}{prior})"
        )


def _levels_covered(level: str) -> tuple[str, ...]:
    return LEVELS[: LEVELS.index(level) + 1]


def truth_at_levels(hierarchy: Hierarchy, label: str, level: str) -> dict[str, str]:
    """The answer ``label`` at ``level`` and every coarser level.

    >>> from atlas.domain import Category, Fixture, Handle, Hierarchy
    >>> h = Hierarchy(("wc/fill",), {"wc/fill": "wc"}, {"wc": Category.TOILET})
    >>> truth_at_levels(h, "wc/fill", "valve")
    {'category': 'toilet', 'fixture': 'wc', 'valve': 'wc/fill'}
    """
    if level == "valve":
        return {lv: hierarchy.label_at(label, lv) for lv in LEVELS}
    if level == "fixture":
        if label not in hierarchy.category_of_fixture:
            raise ValueError(f"label={label!r} is not a fixture of this home.")
        return {"category": str(hierarchy.category_of_fixture[label]), "fixture": label}
    if level == "category":
        return {"category": label}
    raise ValueError(f"level={level!r} should be one of {LEVELS}.")


def clopper_pearson_lower(successes: float, n: float, confidence: float = 0.95) -> float:
    """One-sided exact lower bound: the ``1 - confidence`` quantile of Beta(x, n - x + 1).

    >>> round(clopper_pearson_lower(38, 40), 3)
    0.851
    """
    _check_confidence(confidence)
    if n <= 0:
        return 0.0
    if successes <= 0:
        return 0.0
    return float(beta_dist.ppf(1.0 - confidence, successes, n - successes + 1.0))


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} should be in [0.5, 1).")


def _posterior_point_and_lower(
    prior: Prior, successes: float, trials: float, confidence: float
) -> tuple[float, float]:
    """Posterior mean and one-sided lower bound of accuracy under ``prior``.

    Each component becomes Beta(a + x, b + n - x), reweighted by its marginal likelihood of the
    home's counts (the binomial coefficient is common to all components and cancels).
    """
    a, b, w = _components(prior)
    post_a, post_b = a + successes, b + trials - successes
    if a.size == 1:
        return float(post_a[0] / (post_a[0] + post_b[0])), _beta_lower(
            float(post_a[0]), float(post_b[0]), confidence
        )
    log_w = np.log(np.maximum(w, 1e-300)) + betaln(post_a, post_b) - betaln(a, b)
    post_w = np.exp(log_w - log_w.max())
    post_w /= post_w.sum()
    point = float(np.dot(post_w, post_a / (post_a + post_b)))
    q = 1.0 - confidence
    lower = brentq(lambda t: float(np.dot(post_w, betainc(post_a, post_b, t))) - q, 0.0, 1.0)
    return point, float(lower)


def _beta_lower(a: float, b: float, confidence: float) -> float:
    return float(beta_dist.ppf(1.0 - confidence, a, b))


def estimate_accuracy(
    labels: Sequence[ScoredLabel],
    level: str,
    *,
    method: str = "ipw",
    confidence: float = 0.95,
    prior: Prior | None = None,
    prior_check: float | None = None,
) -> AccuracyEstimate:
    """Accuracy at ``level`` from scored labels.

    Parameters
    ----------
    labels : sequence of ScoredLabel
        The caller chooses which (e.g. only those scored against recent model versions); labels
        that do not score ``level`` (a category-only answer for the fixture level) are skipped.
    level : {"category", "fixture", "valve"}
    method : {"ipw", "audit_cp", "audit_beta"}, default="ipw"
    confidence : float, default=0.95
        One-sided confidence of ``lower``.
    prior : BetaPrior or BetaMixturePrior or None, default=None
        Explicit prior; with "audit_cp" it is refused (Clopper-Pearson is prior-free).
    prior_check : float or None, default=None
        Drop ``prior`` when the home's own evidence is this improbable under it
        (:func:`prior_conflict` below this level): a prior from other homes must not outvote
        a home that is measurably worse than they were.

    Returns
    -------
    AccuracyEstimate
        With no usable label: point 0, lower 0 (nothing is certified).
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r} should be one of {LEVELS}.")
    if method not in METHODS:
        raise ValueError(f"method={method!r} should be one of {METHODS}.")
    _check_confidence(confidence)
    if method == "audit_cp" and prior is not None:
        raise ValueError("method='audit_cp' is prior-free; use 'audit_beta' or 'ipw' with prior.")
    usable = [lab for lab in labels if lab.scores(level)]
    n_audit = sum(lab.is_audit for lab in usable)
    correct = np.array([lab.correct(level) for lab in usable], dtype=float)
    audit = np.array([lab.is_audit for lab in usable], dtype=bool)
    if method == "ipw":
        weights = np.array([1.0 / lab.inclusion_prob for lab in usable])
        x, n_eff = _ipw_counts(correct, weights)
        n_labels = len(usable)
    else:
        x, n_eff = float(correct[audit].sum()), float(audit.sum())
        n_labels = int(n_eff)
    point, lower, prior, dropped = bound_from_counts(
        x, n_eff, method=method, confidence=confidence, prior=prior, prior_check=prior_check
    )
    return AccuracyEstimate(
        level,
        float(point),
        float(lower),
        n_labels,
        n_audit,
        float(n_eff),
        method,
        confidence,
        prior,
        dropped,
        float(x),
    )


def bound_from_counts(
    successes: float,
    trials: float,
    *,
    method: str = "ipw",
    confidence: float = 0.95,
    prior: Prior | None = None,
    prior_check: float | None = None,
) -> tuple[float, float, Prior | None, bool]:
    """Point, lower bound, the prior applied and whether it was dropped, from (effective) counts.

    The second half of :func:`estimate_accuracy`, public so that benchmarks can re-decide a
    home's bounds under another prior from the counts a run recorded, without its labels.
    """
    _check_confidence(confidence)
    dropped = (
        prior is not None
        and prior_check is not None
        and trials > 0
        and prior_conflict(prior, successes, trials) < prior_check
    )
    if dropped:
        prior = None
    if method == "audit_cp" or (method == "ipw" and prior is None):
        point = successes / trials if trials else 0.0
        return point, clopper_pearson_lower(successes, trials, confidence), None, dropped
    point, lower = _posterior_point_and_lower(
        prior or BetaPrior(1.0, 1.0), successes, trials, confidence
    )
    return point, lower, prior, dropped


def prior_conflict(prior: Prior, successes: float, trials: float) -> float:
    """Prior-predictive probability of evidence as poor as ``successes`` of ``trials`` or worse.

    A home drawn from the prior's population shows so few successes with this probability
    (Beta-binomial lower tail; non-integer effective counts are rounded). A small value says
    the home is not like the homes the prior came from (Box's prior-predictive check).

    >>> prior = BetaPrior(90, 10)  # homes like it are ~90% accurate
    >>> round(prior_conflict(prior, 9, 10), 2), round(prior_conflict(prior, 5, 10), 3)
    (0.63, 0.003)
    """
    if trials <= 0:
        return 1.0
    n = max(1, round(trials))
    k = round(successes * n / trials)
    a, b, w = _components(prior)
    return float(np.dot(w, betabinom.cdf(k, n, a, b)))


def _ipw_counts(correct: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Effective successes and trials ``(p * n_eff, n_eff)`` of the Hajek estimate ``p``.

    The bound is then Clopper-Pearson (or the Beta posterior) on these effective counts.

    Hajek (sum of w*y over sum of w) rather than plain Horvitz-Thompson (sum of w*y over the
    known pool size): HT is exactly unbiased but its spread was 3-5 times larger in our
    simulations, because one rarely drawn use carries a weight of ~70; Hajek's bias is O(1/n)
    and was under one point at 30 labels (docs/estimation.md).
    """
    n = correct.size
    if n == 0:
        return 0.0, 0.0
    w = weights / weights.sum()
    p = min(1.0, max(0.0, float(np.dot(w, correct))))  # rounding can give 1.0000000000000002
    kish = 1.0 / float(np.dot(w, w))
    if 0.0 < p < 1.0 and n > 1:
        # Linearised variance of the ratio estimator, with-replacement form, n/(n-1) corrected.
        var = float(np.sum(w**2 * (correct - p) ** 2)) * n / (n - 1)
        n_eff = min(float(n), p * (1.0 - p) / var)
    else:
        n_eff = min(float(n), kish)
    return p * n_eff, n_eff


def naive_accuracy(labels: Sequence[ScoredLabel], level: str) -> float:
    """Share of correct labels, ignoring how they were chosen. Biased under active learning;
    kept for comparison in tests, benchmarks and docs, never for display decisions."""
    usable = [lab for lab in labels if lab.scores(level)]
    if not usable:
        return 0.0
    return float(np.mean([lab.correct(level) for lab in usable]))
