"""Saving and loading codebooks as plain arrays plus JSON (never pickle).

Codebooks travel between the service's database/disk and workers; loading must not execute
anything from the file, so the .npz is read with ``allow_pickle=False`` and holds only the atoms
(float64) and a UTF-8 JSON document (as uint8 bytes) with the format, the constructor parameters
and the version. Loading recomputes the version from the content and refuses a mismatch, so a
corrupted or hand-edited file cannot pass for the codebook a classification recorded.
"""

from __future__ import annotations

import json
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codebook._version import FORMAT, content_version

if TYPE_CHECKING:
    from codebook._codebook import Codebook


def save_codebook(codebook: Codebook, path: str | Path) -> None:
    """Write ``codebook`` to ``path`` (an .npz file; numpy adds the suffix if missing)."""
    params = codebook.get_params()
    if not (params["random_state"] is None or isinstance(params["random_state"], Integral)):
        raise ValueError(
            f"random_state={params['random_state']!r} cannot be saved: use an int or None."
        )
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
    params["random_state"] = None if params["random_state"] is None else int(params["random_state"])
    resolved = codebook.resolved_params()
    meta = {
        "format": FORMAT,
        "version": codebook.version_,
        "params": params,
        # what scales="auto" resolved to at fit
        "resolved": {"scales": list(resolved["scales"])},
    }
    text = json.dumps(meta, sort_keys=True).encode("utf-8")
    np.savez(
        path,
        components=np.ascontiguousarray(codebook.components_, dtype="<f8"),
        metadata=np.frombuffer(text, dtype=np.uint8),
    )


def load_codebook(cls: type[Codebook], path: str | Path) -> Codebook:
    """Read a file written by :func:`save_codebook`; errors name the file and the problem."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"components", "metadata"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not a codebook file, missing arrays {sorted(missing)}.")
        components = np.array(data["components"], dtype=np.float64)
        meta: dict[str, Any] = json.loads(data["metadata"].tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format={meta.get('format')!r}, expected {FORMAT!r}.")
    params = dict(meta["params"])
    for name in ("segment_edges_s", "scales", "pyramid"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    codebook = cls(**params)
    codebook._check_params()
    resolved = meta.get("resolved", {})  # absent in files written before the generic mode
    codebook.scales_ = tuple(int(s) for s in resolved.get("scales", codebook.scales))
    expected_shape = (len(codebook.scales_) * codebook.n_atoms, codebook.atom_length)
    if components.shape != expected_shape:
        raise ValueError(f"{path}: components shape {components.shape}, expected {expected_shape}.")
    version = content_version(codebook.resolved_params(), components)
    if version != meta.get("version"):
        raise ValueError(
            f"{path}: stored version={meta.get('version')!r} but the content hashes to "
            f"{version!r}; the file is corrupted or was edited."
        )
    codebook.components_ = components
    codebook.version_ = version
    return codebook
