"""Sparse feature codebook over 1-D transient waveforms (see docs/codebook.md)."""

from codebook._codebook import GENERIC_PARAMS, Codebook
from codebook._version import content_version

__all__ = ["GENERIC_PARAMS", "Codebook", "content_version"]
