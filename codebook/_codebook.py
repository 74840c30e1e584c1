"""The sparse feature codebook: waveform atoms learned per home, codes pooled over time.

Why this shape of feature: a valve's transient is a short sequence of wave events (the step,
the surge, ringing at the pipe run's quarter-wave frequency, its decay). A dictionary of short
atoms learned from the home's own windows describes each patch of a window with a few atoms;
pooling each atom's strongest code within a few time segments after the onset keeps *when*
each shape happens (ringing 300 ms after the onset is not the onset itself) while allowing
small timing jitter. The result is a fixed-length, mostly-zero vector a linear model can learn
from with a handful of labels. The physical features of :mod:`atlas.transient` are appended
because normalisation removes the amplitudes that identify a valve's flow rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from sklearn_extra.cluster import KMedoids

from atlas.transient import FEATURE_NAMES, feature_matrix
from codebook import _windows
from codebook._omp import omp_batch
from codebook._version import content_version

#: KMedoids holds the full pairwise distance matrix: 4,000 patches is 128 MB of float64.
MAX_MEDOID_PATCHES = 4000
_WINDOWS_PER_CHUNK = 256  # windows encoded per vectorised pass (~13k patches of 1.75 s windows)


class Codebook(TransformerMixin, BaseEstimator):
    """Sparse codes of 1-D transient windows over a learned dictionary of short atoms.

    Parameters
    ----------
    n_atoms : int, default=64
        Dictionary size.
    atom_length : int, default=64
        Samples per atom (64 ms at 1 kHz: several periods of 50-300 Hz ringing, one quarter
        period of slow 4 Hz ringing).
    sample_rate_hz : int, default=1000
        Rate of every window this codebook accepts; others are refused, not resampled.
    hop : int or None, default=None
        Samples between patch starts; ``None`` means ``atom_length // 2``.
    n_nonzero_coefs : int, default=3
        Atoms per patch in the OMP code.
    pre_s : float, default=0.25
        Seconds of pre-onset baseline at the start of each window: its median is subtracted
        before scaling. 0 means the signal is used as is (no baseline).
    segment_edges_s : tuple of float, default=(0.25, 0.35, 0.5, 0.75, 1.0)
        Pooling segment boundaries, seconds from the window's first sample (the default puts
        the onset at 0.25 s, as in the atlas.event windows); ``len + 1`` segments.
    atom_method : {"medoids", "dictionary"}, default="medoids"
        ``"medoids"``: scikit-learn-extra's KMedoids (cosine) on at most 4,000 patches; atoms
        are real patches. ``"dictionary"``: scikit-learn's MiniBatchDictionaryLearning (needed
        for ``partial_fit``). Measured (docs/codebook.md): the same few-label accuracy within
        noise, medoids fit 7-10x faster (1-2 s vs 15-22 s for ~2,900 windows).
    alpha : float, default=0.05
        Sparsity penalty of dictionary learning (patches are scaled to peak 1).
    max_iter : int, default=20
        Epochs over the patches for dictionary learning / iterations for KMedoids.
    pooling : {"split", "abs"}, default="split"
        Per segment and atom: ``"split"`` keeps the largest positive code and the largest
        negative code's magnitude (two columns), ``"abs"`` the largest magnitude (one column).
    center_patches : bool, default=True
        Remove each patch's mean, so atoms describe wave shape rather than the level.
    min_patch_rms : float, default=0.01
        Patches quieter than this (window scaled to peak 1) are not learned from and get an
        all-zero code: the flat baseline and the settled tail carry no shape.
    physical_features : bool, default=True
        Append :data:`atlas.transient.FEATURE_NAMES` (computed with ``pre_s``).
    max_fit_patches : int, default=20000
        Patches sampled (by ``random_state``) from the windows to learn the atoms.
    random_state : int, RandomState instance or None, default=None
        Makes fitting deterministic.

    Attributes
    ----------
    components_ : ndarray of shape (n_atoms, atom_length)
        Unit-norm atoms.
    version_ : str
        Content hash of the parameters and atoms (see :func:`codebook.content_version`).
    n_fit_patches_ : int
        Informative patches available at the last fit/partial_fit.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1750) / 1000
    >>> waves = [np.sin(2 * np.pi * f * t) * (t > 0.25) for f in np.linspace(20, 80, 30)]
    >>> cb = Codebook(n_atoms=8, physical_features=False, random_state=0).fit(waves)
    >>> cb.components_.shape
    (8, 64)
    >>> cb.transform(waves[:2]).shape
    (2, 96)
    """

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's declared-constraints idiom)
        "n_atoms": [Interval(Integral, 2, None, closed="left")],
        "atom_length": [Interval(Integral, 4, None, closed="left")],
        "sample_rate_hz": [Interval(Integral, 1, None, closed="left")],
        "hop": [Interval(Integral, 1, None, closed="left"), None],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "pre_s": [Interval(Real, 0, None, closed="left")],
        "segment_edges_s": [tuple, list],
        "atom_method": [StrOptions({"dictionary", "medoids"})],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"split", "abs"})],
        "center_patches": ["boolean"],
        "min_patch_rms": [Interval(Real, 0, None, closed="left")],
        "physical_features": ["boolean"],
        "max_fit_patches": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_atoms: int = 64,
        atom_length: int = 64,
        sample_rate_hz: int = 1000,
        *,
        hop: int | None = None,
        n_nonzero_coefs: int = 3,
        pre_s: float = 0.25,
        segment_edges_s: Sequence[float] = (0.25, 0.35, 0.5, 0.75, 1.0),
        atom_method: str = "medoids",
        alpha: float = 0.05,
        max_iter: int = 20,
        pooling: str = "split",
        center_patches: bool = True,
        min_patch_rms: float = 0.01,
        physical_features: bool = True,
        max_fit_patches: int = 20000,
        random_state: Any = None,
    ) -> None:
        self.n_atoms = n_atoms
        self.atom_length = atom_length
        self.sample_rate_hz = sample_rate_hz
        self.hop = hop
        self.n_nonzero_coefs = n_nonzero_coefs
        self.pre_s = pre_s
        self.segment_edges_s = segment_edges_s
        self.atom_method = atom_method
        self.alpha = alpha
        self.max_iter = max_iter
        self.pooling = pooling
        self.center_patches = center_patches
        self.min_patch_rms = min_patch_rms
        self.physical_features = physical_features
        self.max_fit_patches = max_fit_patches
        self.random_state = random_state

    # ------------------------------------------------------------------ learning
    def fit(
        self, X: Iterable[Any], y: Any = None, *, sample_rate_hz: int | None = None
    ) -> Codebook:
        """Learn the atoms from windows ``X`` (1-D arrays of any lengths >= ``atom_length``).

        ``sample_rate_hz``, when given, is the rate of the plain arrays in ``X`` and must equal
        the constructor's; items with their own ``sample_rate_hz`` attribute are checked too.
        """
        self._check_params()
        rng = check_random_state(self.random_state)
        windows = self._windows(X, sample_rate_hz)
        found = self._informative_patches(windows)
        self.n_fit_patches_ = len(found)
        self._require_patches(len(found))
        if len(found) > self.max_fit_patches:
            found = found[np.sort(rng.choice(len(found), self.max_fit_patches, replace=False))]
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.atom_method == "dictionary":
            self._learner = MiniBatchDictionaryLearning(
                n_components=self.n_atoms,
                alpha=self.alpha,
                max_iter=self.max_iter,
                batch_size=256,
                random_state=seed,
            ).fit(found)
            atoms = self._learner.components_
        else:
            if len(found) > MAX_MEDOID_PATCHES:
                keep = rng.choice(len(found), MAX_MEDOID_PATCHES, replace=False)
                found = found[np.sort(keep)]
            with warnings.catch_warnings():
                # scikit-learn-extra 0.3's k-medoids++ calls sklearn's deprecated stable_cumsum
                warnings.filterwarnings("ignore", message=".*stable_cumsum", category=FutureWarning)
                medoids = KMedoids(
                    n_clusters=self.n_atoms,
                    metric="cosine",
                    method="alternate",
                    init="k-medoids++",
                    max_iter=self.max_iter,
                    random_state=seed,
                ).fit(found)
            atoms = found[medoids.medoid_indices_]
        self._set_atoms(atoms)
        return self

    def partial_fit(
        self, X: Iterable[Any], y: Any = None, *, sample_rate_hz: int | None = None
    ) -> Codebook:
        """Update the atoms with one mini-batch of windows (``atom_method="dictionary"``).

        Continues the in-memory dictionary learner of earlier ``fit``/``partial_fit`` calls.
        A medoid codebook or one read by :meth:`load` has no learner state (its sufficient
        statistics are not saved), so it is refit with :meth:`fit` on the stored windows.
        """
        self._check_params()
        if self.atom_method != "dictionary":
            raise ValueError(
                f"partial_fit needs atom_method='dictionary', got atom_method="
                f"{self.atom_method!r}: medoid atoms are refit from all windows with fit()."
            )
        if hasattr(self, "components_") and not hasattr(self, "_learner"):
            raise ValueError(
                f"codebook {self.version_} was loaded from a file and has no learner state; "
                "refit it with fit() on the stored windows."
            )
        found = self._informative_patches(self._windows(X, sample_rate_hz))
        if not hasattr(self, "_learner"):
            self._require_patches(len(found))
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            self._learner = MiniBatchDictionaryLearning(
                n_components=self.n_atoms, alpha=self.alpha, batch_size=256, random_state=seed
            )
        if len(found):
            self._learner.partial_fit(found)
            self._set_atoms(self._learner.components_)
        self.n_fit_patches_ = len(found)
        return self

    # ------------------------------------------------------------------ encoding
    def transform(self, X: Iterable[Any], *, sample_rate_hz: int | None = None) -> np.ndarray:
        """Feature matrix of shape (n_windows, n_features_out_) for windows ``X``.

        Columns are grouped by time segment; within a segment, per atom, the largest positive
        code and the largest negative code's magnitude (``pooling="split"``) or the largest
        magnitude (``pooling="abs"``), 0 when the atom is unused; then the physical features
        when ``physical_features`` is set.
        """
        check_is_fitted(self, "components_")
        windows = self._windows(X, sample_rate_hz)
        out = np.zeros((len(windows), self.n_features_out_))
        width = self._per_segment
        n_codes = self._n_segments * width
        for length, members in _by_length(windows).items():
            slices = _windows.segment_slices(
                length, self.atom_length, self._hop, self.sample_rate_hz, self.segment_edges_s
            )
            for start in range(0, len(members), _WINDOWS_PER_CHUNK):
                rows = members[start : start + _WINDOWS_PER_CHUNK]
                codes = self._codes(np.stack([windows[i] for i in rows]))
                for s, sl in enumerate(slices):
                    if sl.stop > sl.start:
                        out[rows, s * width : (s + 1) * width] = self._pool(codes[:, sl])
        if self.physical_features:
            # batched: equal-length windows share one vectorised pass (docs/codebook.md, speed)
            out[:, n_codes:] = feature_matrix(windows, self.sample_rate_hz, self.pre_s)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``s{segment}_a{atom}{+|-}`` for the pooled codes, then the physical feature names."""
        check_is_fitted(self, "components_")
        signs = ("+", "-") if self.pooling == "split" else ("",)
        names = [
            f"s{s}_a{a:03d}{sign}"
            for s in range(self._n_segments)
            for sign in signs
            for a in range(self.n_atoms)
        ]
        if self.physical_features:
            names += list(FEATURE_NAMES)
        return np.asarray(names, dtype=object)

    @property
    def n_features_out_(self) -> int:
        n_physical = len(FEATURE_NAMES) if self.physical_features else 0
        return self._n_segments * self._per_segment + n_physical

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> str:
        """Write atoms and parameters to ``path`` (.npz, no pickle); returns ``version_``."""
        from codebook._store import save_codebook

        check_is_fitted(self, "components_")
        save_codebook(self, path)
        return self.version_

    @classmethod
    def load(cls, path: Any) -> Codebook:
        """Read a codebook written by :meth:`save`, checking its content hash."""
        from codebook._store import load_codebook

        return load_codebook(cls, path)

    # ------------------------------------------------------------------ internals
    @property
    def _hop(self) -> int:
        return self.hop if self.hop is not None else max(1, self.atom_length // 2)

    @property
    def _n_segments(self) -> int:
        return len(self.segment_edges_s) + 1

    @property
    def _per_segment(self) -> int:
        return 2 * self.n_atoms if self.pooling == "split" else self.n_atoms

    def _pool(self, codes: np.ndarray) -> np.ndarray:
        """Pool codes of shape (n_windows, n_patches, n_atoms) over the patches.

        The sign of an oscillation's code is its phase at the patch, which jitters from one
        use to the next: a signed max-abs pooling turned that jitter into feature noise (up vs
        down chirps, 32 atoms, 3 seeds: 0.83-0.94 accuracy, against 1.00 for both options
        here). Pooling each sign apart keeps polarity (a drop vs a recovery) without the noise.
        """
        if self.pooling == "abs":
            return np.abs(codes).max(axis=1)
        return np.hstack([codes.max(axis=1).clip(min=0), (-codes.min(axis=1)).clip(min=0)])

    def _check_params(self) -> None:
        self._validate_params()
        edges = np.asarray(self.segment_edges_s, dtype=np.float64)
        if edges.ndim != 1 or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
            raise ValueError(
                f"segment_edges_s={self.segment_edges_s!r} should be positive and strictly "
                "increasing seconds."
            )
        if self.n_nonzero_coefs > self.n_atoms:
            raise ValueError(
                f"n_nonzero_coefs={self.n_nonzero_coefs} should be <= n_atoms={self.n_atoms}."
            )

    def _require_patches(self, n_found: int) -> None:
        if n_found < self.n_atoms:
            raise ValueError(
                f"only {n_found} informative patches (rms >= min_patch_rms={self.min_patch_rms}) "
                f"in X; need at least n_atoms={self.n_atoms}: pass more or longer windows."
            )

    def _windows(self, X: Iterable[Any], sample_rate_hz: int | None) -> list[np.ndarray]:
        """Validated float64 windows; refuses any at a rate other than ``sample_rate_hz``."""
        if sample_rate_hz is not None and int(sample_rate_hz) != self.sample_rate_hz:
            raise ValueError(
                f"sample_rate_hz={sample_rate_hz} differs from this codebook's sample_rate_hz="
                f"{self.sample_rate_hz}; resample the windows or use a codebook for that rate."
            )
        windows = []
        for i, item in enumerate(X):
            x, rate = _windows.as_window(item, i)
            if rate is not None and rate != self.sample_rate_hz:
                raise ValueError(
                    f"X[{i}] has sample_rate_hz={rate}, but this codebook's sample_rate_hz="
                    f"{self.sample_rate_hz}; resample it or use a codebook for that rate."
                )
            if x.size < self.atom_length:
                raise ValueError(
                    f"X[{i}] has {x.size} samples, fewer than atom_length={self.atom_length}."
                )
            windows.append(x)
        if not windows:
            raise ValueError("X is empty: need at least one window.")
        return windows

    def _normalised_patches(self, stacked: np.ndarray) -> np.ndarray:
        pre_n = round(self.pre_s * self.sample_rate_hz)
        scaled = _windows.normalise(stacked, min(pre_n, stacked.shape[1]))
        return _windows.patches(scaled, self.atom_length, self._hop, self.center_patches)

    def _informative_patches(self, windows: list[np.ndarray]) -> np.ndarray:
        """All patches loud enough to learn from, in input order, shape (n, atom_length)."""
        found = []
        for members in _by_length(windows).values():
            flat = self._normalised_patches(np.stack([windows[i] for i in members]))
            flat = flat.reshape(-1, self.atom_length)
            found.append(flat[_rms(flat) >= self.min_patch_rms])
        return np.concatenate(found)

    def _codes(self, stacked: np.ndarray) -> np.ndarray:
        """Dense codes of shape (n_windows, n_patches, n_atoms); quiet patches stay zero."""
        pieces = self._normalised_patches(stacked)
        flat = pieces.reshape(-1, self.atom_length)
        loud = np.nonzero(_rms(flat) >= self.min_patch_rms)[0]
        codes = np.zeros((flat.shape[0], self.n_atoms))
        if loud.size:
            indices, coefs = omp_batch(flat[loud], self.components_, self.n_nonzero_coefs)
            codes[loud[:, None], indices] = coefs
        return codes.reshape(pieces.shape[0], pieces.shape[1], self.n_atoms)

    def _set_atoms(self, atoms: np.ndarray) -> None:
        norms = np.linalg.norm(atoms, axis=1)
        if np.any(norms < 1e-12):
            raise ValueError(
                f"{int(np.sum(norms < 1e-12))} of n_atoms={self.n_atoms} learned atoms are zero: "
                "X has too few distinct informative patches for this many atoms."
            )
        self.components_ = np.ascontiguousarray(atoms / norms[:, None], dtype=np.float64)
        self.version_ = content_version(self.get_params(), self.components_)


def _rms(flat: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(flat * flat, axis=1))


def _by_length(windows: list[np.ndarray]) -> dict[int, list[int]]:
    """Window indices grouped by length, so each group is encoded as one stacked array."""
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(windows):
        groups.setdefault(x.size, []).append(i)
    return groups
