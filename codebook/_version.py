"""Content-derived codebook versions.

A classification records the codebook version it was computed with, so the version must change
exactly when the codes could: it hashes the atoms and the parameters that shape encoding, and
nothing else (learning-only settings such as ``alpha`` or ``random_state`` do not change what a
given set of atoms produces). Identical content gives the identical version on any machine.
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


def content_version(params: dict[str, Any], components: np.ndarray) -> str:
    """``"cb-"`` + 16 hex digits of SHA-256 over the encoding parameters and the atoms."""
    encoding = {name: _plain(params[name]) for name in ENCODING_PARAMS}
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
