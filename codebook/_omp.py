"""Orthogonal matching pursuit over many short signals at once (pure numpy).

scikit-learn's ``orthogonal_mp_gram`` (behind ``SparseCoder(transform_algorithm="omp")``) runs
its greedy loop once per signal in Python. A 1.75 s window cut into atom-length patches gives
~50 patches, so 5,000 windows/s means ~250,000 OMP problems/s: far beyond a per-signal loop.
Here every step of the greedy algorithm (pick the atom most correlated with the residual,
re-solve least squares on the support, update the residual) is one vectorised operation across
all signals, so the cost is a few matrix products per step. With exactly ``n_nonzero_coefs``
steps and no ties it selects the same atoms as scikit-learn and gives the same coefficients
(tests/codebook/test_omp.py checks this).
"""

from __future__ import annotations

import numpy as np

_RIDGE = 1e-10  # keeps the tiny support Gram matrices invertible if two atoms nearly coincide
#: Signals per vectorised pass: small enough that the (chunk, n_atoms) work arrays stay in
#: cache (4096 ran 20 % faster than 16384 and 2.5x faster than one pass over 265k patches).
CHUNK = 4096


def omp_batch(
    signals: np.ndarray, dictionary: np.ndarray, n_nonzero_coefs: int, *, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse codes of ``signals`` over unit-norm ``dictionary`` rows by greedy OMP.

    Parameters
    ----------
    signals : ndarray of shape (n_samples, n_features)
    dictionary : ndarray of shape (n_atoms, n_features)
        Rows of unit Euclidean norm.
    n_nonzero_coefs : int
        Atoms per signal (at most ``n_atoms``).
    chunk : int
        Signals per vectorised pass (:data:`CHUNK`); each signal's code does not depend on it.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_nonzero_coefs), int
        Selected atoms, in the order they were picked.
    coefs : ndarray of shape (n_samples, n_nonzero_coefs)
        Least-squares coefficients of the selected atoms.
    """
    n_atoms = dictionary.shape[0]
    if not 1 <= n_nonzero_coefs <= n_atoms:
        raise ValueError(f"n_nonzero_coefs={n_nonzero_coefs} should be in [1, n_atoms={n_atoms}].")
    signals = np.asarray(signals, dtype=np.float64)
    dictionary = np.asarray(dictionary, dtype=np.float64)
    gram = dictionary @ dictionary.T
    indices = np.zeros((signals.shape[0], n_nonzero_coefs), dtype=np.intp)
    coefs = np.zeros((signals.shape[0], n_nonzero_coefs))
    for start in range(0, signals.shape[0], chunk):
        stop = start + chunk
        _omp_chunk(signals[start:stop] @ dictionary.T, gram, indices[start:stop], coefs[start:stop])
    return indices, coefs


def _omp_chunk(xy: np.ndarray, gram: np.ndarray, indices: np.ndarray, coefs: np.ndarray) -> None:
    """OMP on one chunk given its correlations ``xy`` with the atoms; fills indices/coefs."""
    n_nonzero_coefs = indices.shape[1]
    rows = np.arange(xy.shape[0])
    corr = np.abs(xy)
    for k in range(n_nonzero_coefs):
        for j in range(k):
            corr[rows, indices[:, j]] = -1.0  # never pick an atom twice
        indices[:, k] = np.argmax(corr, axis=1)
        support = indices[:, : k + 1]
        sub_gram = gram[support[:, :, None], support[:, None, :]]
        sub_gram += _RIDGE * np.eye(k + 1)
        rhs = np.take_along_axis(xy, support, axis=1)
        coefs[:, : k + 1] = np.linalg.solve(sub_gram, rhs[:, :, None])[:, :, 0]
        if k + 1 < n_nonzero_coefs:
            # correlations of the residual: X D^T - sum_j c_j G[atom_j], no residual formed
            corr = xy.copy()
            for j in range(k + 1):
                corr -= coefs[:, j, None] * gram[indices[:, j]]
            np.abs(corr, out=corr)
