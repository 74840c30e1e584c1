"""Sparse feature codebook over 1-D transient waveforms (see docs/codebook.md).

Besides :class:`Codebook`, the encoders it is built from are public, each a unit with its own
contract and tests: :func:`omp_batch` (batched orthogonal matching pursuit, scikit-learn's
codes), :func:`soft_threshold` (Coates & Ng's encoding) and the window geometry of the pooling
segments (:func:`pyramid_slices`, :func:`equal_parts`).
"""

from codebook._codebook import GENERIC_PARAMS, Codebook, soft_threshold
from codebook._omp import omp_batch
from codebook._version import content_version
from codebook._windows import equal_parts, pyramid_slices

__all__ = [
    "GENERIC_PARAMS",
    "Codebook",
    "content_version",
    "equal_parts",
    "omp_batch",
    "pyramid_slices",
    "soft_threshold",
]
