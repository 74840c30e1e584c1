"""Content-derived codebook versions.

A classification records the codebook version it was computed with, so the version must change
exactly when the codes could: it hashes the atoms and the parameters that shape encoding, and
nothing else (learning-only settings such as ``alpha`` or ``random_state`` do not change what a
given set of atoms produces). Identical content gives the identical version on any machine.

The generic-mode parameters enter the hash only when they differ from their defaults,
so every water-mode codebook keeps the version it had before they existed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

FORMAT = "atlas.codebook/1"
#: Parameters that change transform() output for given atoms.
ENCODING_PARAMS = (
    "n_atoms",
    "atom_length",
    "sample_rate_hz",
    "hop",
    "n_nonzero_coefs",
    "pre_s",
    "segment_edges_s",
    "pooling",
    "center_patches",
    "min_patch_rms",
    "physical_features",
)
#: Encoding parameters of the generic mode and their defaults (hashed only when not default).
GENERIC_ENCODING_DEFAULTS: dict[str, Any] = {
    "scales": [1.0],
    "normalise": "peak",
    "pyramid": None,
    "level_features": False,
    "level_parts": 8,
    "encoding": "omp",
    "threshold": 0.25,
}


def content_version(params: dict[str, Any], components: np.ndarray) -> str:
    """``"cb-"`` + 16 hex digits of SHA-256 over the encoding parameters and the atoms.

    ``params`` holds resolved values (``Codebook.resolved_params()``: ``scales`` as in use,
    not ``"auto"``); generic-mode parameters that are absent count as their defaults.
    """
    encoding = {name: _plain(params[name]) for name in ENCODING_PARAMS}
    for name, default in GENERIC_ENCODING_DEFAULTS.items():
        value = _plain(params.get(name, default))
        if value != default:
            encoding[name] = value
    digest = hashlib.sha256()
    digest.update(FORMAT.encode())
    digest.update(json.dumps(encoding, sort_keys=True, separators=(",", ":")).encode())
    atoms = np.ascontiguousarray(components, dtype="<f8")
    digest.update(json.dumps(list(atoms.shape)).encode())
    digest.update(atoms.tobytes())
    return "cb-" + digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """JSON-stable form: tuples become lists, numpy scalars become Python numbers."""
    if isinstance(value, (tuple, list)):
        return [float(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
