"""Plain JSON types plus numpy arrays as one compressed blob, never pickle.

Why: what the service stores for a model (an engine snapshot, a fleet version) outlives the
code that wrote it (a worker upgraded mid-deployment must read it), and loading must not
execute anything from the database. The JSON holds ``{"__nd__": i}`` where array ``i`` was;
the arrays go in an ``.npz`` beside it (read with ``allow_pickle=False``), bit for bit. The
blob is zlib-compressed.
"""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

import numpy as np


def _split(obj: Any, arrays: list[np.ndarray]) -> Any:
    """``obj`` with every ndarray replaced by ``{"__nd__": index}`` into ``arrays``."""
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {"__nd__": len(arrays) - 1}
    if isinstance(obj, dict):
        return {k: _split(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split(v, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            return arrays[f"a{obj['__nd__']}"]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def encode_state(state: dict[str, Any]) -> bytes:
    """``state`` (JSON types and ndarrays) as compressed bytes (JSON + ``.npz`` of its arrays)."""
    arrays: list[np.ndarray] = []
    body = json.dumps(_split(state, arrays)).encode()
    buf = io.BytesIO()
    np.savez(buf, **{f"a{i}": a for i, a in enumerate(arrays)})
    return zlib.compress(len(body).to_bytes(8, "little") + body + buf.getvalue(), 1)


def decode_state(blob: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_state`."""
    raw = zlib.decompress(blob)
    n = int.from_bytes(raw[:8], "little")
    with np.load(io.BytesIO(raw[8 + n :]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _join(json.loads(raw[8 : 8 + n]), arrays)
