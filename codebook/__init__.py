"""Sparse feature codebook over 1-D transient waveforms (see docs/codebook.md)."""

from codebook._codebook import Codebook
from codebook._version import content_version

__all__ = ["Codebook", "content_version"]
