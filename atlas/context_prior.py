"""Which bathroom a toilet flush came from, told by the sink use that follows it.

WHY: two toilets of the same model on runs of nearly the same length make the same transients
(their float valves close too slowly to ring), so neither the spec physics nor a few labels
separate them. Behaviour does: people wash their hands at the sink of the bathroom they are in,
starting seconds after the flush, and the bathroom sinks themselves *are* separable by their
pipe runs' ringing (:mod:`atlas.physics_prior`). So a use followed within ``window_s`` by a use
that looks like the sink of bathroom B is evidence for the toilet of bathroom B.

The evidence is a likelihood per valve (log, added to the physics columns): for each toilet
valve at location L, ``log(floor + q_L)`` where ``q_L`` is the probability mass, summed over the
uses starting in the window, that such a use is a bathroom sink at L (from the physics
likelihood alone, so it needs no label and does not feed the classifier's output back into
itself). Uses with no follower, and every non-toilet valve, get 0 (no information). ``floor``
keeps a flush followed by the *other* bathroom's sink possible (a second person, a guest).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlas.domain import Category
from atlas.homespec import HomeSpec
from atlas.uses import WaterUse

#: Hand washing starts this many seconds after the flush starts (the usage literature's "right
#: after"; a wide window also catches slow hand washers at the cost of more coincidences).
WINDOW_S: tuple[float, float] = (2.0, 30.0)


def handwash_log_likelihood(
    spec: HomeSpec,
    uses: Sequence[WaterUse],
    physics_loglik: np.ndarray,
    *,
    window_s: tuple[float, float] = WINDOW_S,
    floor: float = 0.05,
) -> np.ndarray:
    """Log-likelihood per use (rows, in ``uses`` order) and valve (the hierarchy's columns).

    Parameters
    ----------
    spec : HomeSpec
    uses : sequence of WaterUse
        Every use of the home, sorted by start time.
    physics_loglik : ndarray of shape (n_uses, n_valves)
        :func:`atlas.physics_prior.ring_log_likelihood` of the same uses.
    window_s : (float, float), default=(2, 30)
        A follower starts this many seconds after the use's start.
    floor : float, default=0.05
        Likelihood left for a toilet whose bathroom's sink did not follow.
    """
    h = spec.hierarchy
    n_valves = len(h.valve_ids)
    physics_loglik = np.asarray(physics_loglik, dtype=float)
    if physics_loglik.shape != (len(uses), n_valves):
        raise ValueError(
            f"physics_loglik has shape {physics_loglik.shape}; expected ({len(uses)}, {n_valves})."
        )
    if not 0 < floor <= 1:
        raise ValueError(f"floor={floor} should be in (0, 1].")
    lo, hi = window_s
    if not 0 <= lo < hi:
        raise ValueError(f"window_s={window_s} should be (lo, hi) with 0 <= lo < hi.")
    location = {v: spec.fixture(h.fixture_of[v]).location for v in h.valve_ids}
    toilets = [i for i, v in enumerate(h.valve_ids) if h.category_of_valve(v) == Category.TOILET]
    out = np.zeros((len(uses), n_valves))
    bathrooms = sorted({location[h.valve_ids[i]] for i in toilets})
    if len(bathrooms) < 2:
        return out  # one toilet location: nothing to tell apart
    sink_at = np.zeros((n_valves, len(bathrooms)))
    for i, v in enumerate(h.valve_ids):
        if h.category_of_valve(v) == Category.BATHROOM_FAUCET and location[v] in bathrooms:
            sink_at[i, bathrooms.index(location[v])] = 1.0
    p = np.exp(physics_loglik - physics_loglik.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    # (n_uses, n_bathrooms): the use is a sink of that bathroom (einsum: rows independent)
    q_use = np.einsum("ij,jk->ik", p, sink_at)
    starts = np.array([u.t.timestamp() for u in uses])
    if np.any(np.diff(starts) < 0):
        raise ValueError("uses should be sorted by start time.")
    first = np.searchsorted(starts, starts + lo, side="left")
    last = np.searchsorted(starts, starts + hi, side="right")
    for row in np.flatnonzero(last > first):
        q = np.minimum(1.0, q_use[first[row] : last[row]].sum(axis=0))
        for i in toilets:
            out[row, i] = np.log(floor + q[bathrooms.index(location[h.valve_ids[i]])])
    return out
