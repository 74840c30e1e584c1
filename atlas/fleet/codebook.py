"""Fleet codebook: atoms pooled from many homes' codebooks, PCA from summed code moments.

WHY: a home's own codebook exists only after its first week of saved waves, so the classifier
starts without wave-shape features. The atoms are short normalised transient shapes (shared
physics: a solenoid's hammer, a float valve's slow close), so a codebook learned across homes
encodes a new home's waves from day 1.

Privacy shapes the method: no home ships its waveforms. Each home contributes

* its own codebook's atoms (model parameters: unit-norm 64-sample shapes, no time, line,
  amplitude or label), and
* the first and second moments of its use-pooled codes under the current fleet codebook
  (:class:`CodeMoments`: a count, a sum vector and a scatter matrix),

and the fleet clusters the atoms (k-medoids, cosine, sign-blind) and takes the principal
components of the summed moments: exactly the PCA of all homes' pooled codes, without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn_extra.cluster import KMedoids

from atlas.engine.featurize import CodeProjection
from atlas.features import use_codes
from atlas.uses import WaterUse
from codebook import Codebook, content_version


@dataclass(frozen=True)
class CodeMoments:
    """Count, sum and scatter (sum of outer products) of one home's use-pooled codes."""

    codebook_version: str
    n: int
    total: np.ndarray
    scatter: np.ndarray

    def __add__(self, other: CodeMoments) -> CodeMoments:
        if other.codebook_version != self.codebook_version:
            raise ValueError(
                f"codebook_version={other.codebook_version!r} differs from "
                f"{self.codebook_version!r}: moments of different codebooks do not add."
            )
        return CodeMoments(
            self.codebook_version,
            self.n + other.n,
            self.total + other.total,
            self.scatter + other.scatter,
        )


def code_moments(
    codebook: Codebook, uses: Sequence[WaterUse], event_codes: Mapping[str, np.ndarray]
) -> CodeMoments:
    """Moments of ``uses``' pooled codes (computed in the home; only the moments leave it)."""
    pooled = use_codes(uses, event_codes, codebook.n_features_out_)
    return CodeMoments(codebook.version_, len(pooled), pooled.sum(axis=0), pooled.T @ pooled)


def fleet_atoms(atom_sets: Sequence[np.ndarray], n_atoms: int, random_state: int = 0) -> np.ndarray:
    """``n_atoms`` representative atoms of the homes' atom sets (k-medoids, |cosine|).

    Atom signs are arbitrary (codes carry the sign), so the distance is ``1 - |cos|``.
    """
    if not atom_sets:
        raise ValueError("atom_sets is empty; the fleet codebook needs >= 1 home's atoms.")
    lengths = {a.shape[1] for a in atom_sets}
    if len(lengths) != 1:
        raise ValueError(f"atom_sets have atom lengths {sorted(lengths)}; they should agree.")
    atoms = np.vstack(atom_sets).astype(float)
    atoms /= np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1e-12)
    if atoms.shape[0] < n_atoms:
        raise ValueError(
            f"{atoms.shape[0]} atoms pooled; n_atoms={n_atoms} needs at least as many."
        )
    dist = np.clip(1.0 - np.abs(atoms @ atoms.T), 0.0, None)
    km = KMedoids(
        n_clusters=n_atoms,
        metric="precomputed",
        method="alternate",
        init="k-medoids++",
        random_state=random_state,
    ).fit(dist)
    return atoms[np.sort(km.medoid_indices_)]


def codebook_from_atoms(atoms: np.ndarray, params: Mapping) -> Codebook:
    """A fitted :class:`codebook.Codebook` with the given atoms and encoding parameters."""
    cb = Codebook(**{**dict(params), "n_atoms": int(atoms.shape[0])})
    if atoms.shape[1] != cb.atom_length:
        raise ValueError(f"atoms have length {atoms.shape[1]}; atom_length={cb.atom_length}.")
    cb.components_ = np.ascontiguousarray(atoms, dtype=np.float64)
    cb.version_ = content_version(cb.get_params(), cb.components_)
    return cb


def fleet_projection(
    codebook: Codebook, moments: Sequence[CodeMoments], n_dims: int
) -> CodeProjection:
    """PCA of every contributing home's pooled codes, from the summed moments alone."""
    if not moments:
        raise ValueError("moments is empty; the fleet projection needs >= 1 home.")
    total = moments[0]
    for m in moments[1:]:
        total = total + m
    if total.codebook_version != codebook.version_:
        raise ValueError(
            f"moments are of codebook {total.codebook_version!r}, not {codebook.version_!r}."
        )
    if total.n < 2:
        raise ValueError(f"{total.n} pooled uses; the projection needs >= 2.")
    mean = total.total / total.n
    cov = (total.scatter - total.n * np.outer(mean, mean)) / (total.n - 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][: max(1, min(n_dims, cov.shape[0]))]
    components = vecs[:, order].T
    # eigenvector signs are arbitrary: fix them so the same moments give the same projection
    signs = np.sign(components[np.arange(len(order)), np.abs(components).argmax(axis=1)])
    return CodeProjection(codebook, mean, components * signs[:, None])
