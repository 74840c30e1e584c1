"""Label-selection strategies behind one interface (see :class:`QueryStrategy`).

``STRATEGIES`` maps the names the service, the benchmark and the conformance test use to the
classes; :func:`make_strategy` builds one by name.
"""

from __future__ import annotations

from typing import Any

from atlas.strategies._base import Pool, QueryStrategy
from atlas.strategies.atlas import AtlasSampling
from atlas.strategies.candidates import answerable
from atlas.strategies.diversity import DiversitySampling
from atlas.strategies.margin import MarginSampling
from atlas.strategies.random import RandomSampling

STRATEGIES: dict[str, type[QueryStrategy]] = {
    "random": RandomSampling,
    "margin": MarginSampling,
    "diversity": DiversitySampling,
    "atlas": AtlasSampling,
}


def make_strategy(name: str, **params: Any) -> QueryStrategy:
    """The strategy called ``name`` (a key of :data:`STRATEGIES`) with ``params``."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} should be one of {sorted(STRATEGIES)}.")
    return STRATEGIES[name](**params)


__all__ = [
    "STRATEGIES",
    "AtlasSampling",
    "DiversitySampling",
    "MarginSampling",
    "Pool",
    "QueryStrategy",
    "RandomSampling",
    "answerable",
    "make_strategy",
]
