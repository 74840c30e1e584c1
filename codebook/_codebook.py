"""The sparse feature codebook: waveform atoms learned per home, codes pooled over time.

Why this shape of feature: a valve's transient is a short sequence of wave events (the step,
the surge, ringing at the pipe run's quarter-wave frequency, its decay). A dictionary of short
atoms learned from the home's own windows describes each patch of a window with a few atoms;
pooling each atom's strongest code within a few time segments after the onset keeps *when*
each shape happens (ringing 300 ms after the onset is not the onset itself) while allowing
small timing jitter. The result is a fixed-length, mostly-zero vector a linear model can learn
from with a handful of labels. The physical features of :mod:`atlas.transient` are appended
because normalisation removes the amplitudes that identify a valve's flow rate.

The generic mode (:data:`GENERIC_PARAMS`) serves 1-D signals without a known onset:
atoms at several time scales (the window block-averaged by 1, 2, 4, ...), pooling over a
pyramid of relative segments (the whole window, halves, quarters), mean as well as max pooling,
and the window's level and scale as features. With the default parameters every one of these
is off and the features are bit for bit those of the water mode.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from types import MappingProxyType
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
#: ``scales="auto"``: powers of two while the shortest window holds two atoms, at most this many.
AUTO_MAX_SCALES = 6
#: Raw-window statistics appended by ``level_features`` (before the per-part ones).
LEVEL_NAMES = ("level_mean", "level_std", "level_min", "level_max")

#: The setting for non-water 1-D signals, chosen on GunPoint and OSULeaf (docs/codebook.md,
#: "Generic mode on outside data") and used unchanged on every other dataset there.
GENERIC_PARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "atom_length": 7,
        "scales": "auto",
        "hop": 1,
        "normalise": "zscore",
        "pre_s": 0.0,
        "pyramid": (1,),
        "encoding": "threshold",
        "threshold": 0.6,
        "pooling": "split_mean",
        "level_features": True,
        "physical_features": False,
    }
)


class Codebook(TransformerMixin, BaseEstimator):
    """Sparse codes of 1-D transient windows over a learned dictionary of short atoms.

    Parameters
    ----------
    n_atoms : int, default=64
        Dictionary size (per scale).
    atom_length : int, default=64
        Samples per atom (64 ms at 1 kHz: several periods of 50-300 Hz ringing, one quarter
        period of slow 4 Hz ringing).
    sample_rate_hz : int, default=1000
        Rate of every window this codebook accepts; others are refused, not resampled.
    hop : int, float in (0, 1) or None, default=None
        Samples between patch starts (at every scale); a float is a fraction of the atom
        length; ``None`` means half an atom.
    n_nonzero_coefs : int, default=3
        Atoms per patch in the OMP code.
    pre_s : float, default=0.25
        Seconds of pre-onset baseline at the start of each window: its median is subtracted
        before scaling (``normalise="peak"``). 0 means the signal is used as is (no baseline).
    segment_edges_s : tuple of float, default=(0.25, 0.35, 0.5, 0.75, 1.0)
        Pooling segment boundaries, seconds from the window's first sample (the default puts
        the onset at 0.25 s, as in the atlas.event windows); ``len + 1`` segments. Not used
        when ``pyramid`` is set.
    atom_method : {"medoids", "dictionary"}, default="medoids"
        ``"medoids"``: scikit-learn-extra's KMedoids (cosine) on at most 4,000 patches; atoms
        are real patches. ``"dictionary"``: scikit-learn's MiniBatchDictionaryLearning (needed
        for ``partial_fit``). Measured (docs/codebook.md): the same few-label accuracy within
        noise, medoids fit 7-10x faster (1-2 s vs 15-22 s for ~2,900 windows).
    alpha : float, default=0.05
        Sparsity penalty of dictionary learning (patches are scaled to peak 1).
    max_iter : int, default=20
        Epochs over the patches for dictionary learning / iterations for KMedoids.
    pooling : {"split", "abs", "split_mean"}, default="split"
        Per segment and atom: ``"split"`` keeps the largest positive code and the largest
        negative code's magnitude (two columns), ``"abs"`` the largest magnitude (one column),
        ``"split_mean"`` the two of ``"split"`` and the mean over the segment's patches of the
        positive part and of the negative part (four columns: how often, not only how
        strongly, a shape occurs).
    center_patches : bool, default=True
        Remove each patch's mean, so atoms describe wave shape rather than the level.
    min_patch_rms : float, default=0.01
        Patches quieter than this (window scaled to peak 1) are not learned from and get an
        all-zero code: the flat baseline and the settled tail carry no shape.
    physical_features : bool, default=True
        Append :data:`atlas.transient.FEATURE_NAMES` (computed with ``pre_s``).
    max_fit_patches : int, default=20000
        Patches sampled (by ``random_state``) from the windows to learn the atoms (per scale).
    random_state : int, RandomState instance or None, default=None
        Makes fitting deterministic.
    scales : tuple of int or "auto", default=(1,)
        Time scales of the atoms: at scale ``s`` the window is block-averaged over ``s``
        samples and cut into patches of ``atom_length`` (so an atom spans ``s * atom_length``
        samples); each scale has its own ``n_atoms`` atoms and its own columns. ``"auto"``:
        1, 2, 4, ... while ``2 * s * atom_length`` fits the shortest fit window (three
        patches or more per window), at most :data:`AUTO_MAX_SCALES` scales, and ending before
        a scale with fewer than ``n_atoms`` informative patches to learn from. A window too
        short for a scale has zero codes there.
    normalise : {"peak", "zscore"}, default="peak"
        ``"peak"``: subtract the ``pre_s`` baseline, divide by the largest excursion (water
        windows: the onset is known). ``"zscore"``: subtract the window's mean, divide by its
        standard deviation (any signal; ``pre_s`` is then unused for the codes).
    pyramid : tuple of int or None, default=None
        Relative pooling segments instead of ``segment_edges_s``: for each level ``n`` the
        window is cut in ``n`` equal parts, e.g. ``(1, 2, 4)`` gives 7 segments. Level 1 pools
        over the whole window: a shape counts wherever it occurs (shift invariance), and
        windows of any length fill every segment.
    level_features : bool, default=False
        Append the raw window's mean, standard deviation, minimum and maximum (the amplitude
        that normalising removes) and, for ``level_parts`` equal parts of the window, the mean
        and standard deviation of the normalised window (its coarse level and where the energy
        is: what shift-invariant pooling does not keep).
    level_parts : int, default=8
        Equal parts of the window for the level features.

    Attributes
    ----------
    components_ : ndarray of shape (n_scales * n_atoms, atom_length)
        Unit-norm atoms, scale by scale.
    scales_ : tuple of int
        The scales in use (``scales``, or the automatic choice).
    version_ : str
        Content hash of the parameters and atoms (see :func:`codebook.content_version`).
    n_fit_patches_ : int
        Informative patches available at the last fit/partial_fit (all scales).

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
    >>> generic = Codebook.generic(n_atoms=8, random_state=0).fit([w[::10] for w in waves])
    >>> generic.scales_
    (1, 2, 4, 8)
    >>> generic.transform([w[::10] for w in waves[:2]]).shape
    (2, 148)
    """

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn's declared-constraints idiom)
        "n_atoms": [Interval(Integral, 2, None, closed="left")],
        "atom_length": [Interval(Integral, 4, None, closed="left")],
        "sample_rate_hz": [Interval(Integral, 1, None, closed="left")],
        "hop": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
            None,
        ],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "pre_s": [Interval(Real, 0, None, closed="left")],
        "segment_edges_s": [tuple, list],
        "atom_method": [StrOptions({"dictionary", "medoids"})],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"split", "abs", "split_mean"})],
        "center_patches": ["boolean"],
        "min_patch_rms": [Interval(Real, 0, None, closed="left")],
        "physical_features": ["boolean"],
        "max_fit_patches": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "scales": [tuple, list, StrOptions({"auto"})],
        "normalise": [StrOptions({"peak", "zscore"})],
        "pyramid": [tuple, list, None],
        "level_features": ["boolean"],
        "level_parts": [Interval(Integral, 1, None, closed="left")],
        "encoding": [StrOptions({"omp", "threshold"})],
        "threshold": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        n_atoms: int = 64,
        atom_length: int = 64,
        sample_rate_hz: int = 1000,
        *,
        hop: float | None = None,
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
        scales: Sequence[int] | str = (1,),
        normalise: str = "peak",
        pyramid: Sequence[int] | None = None,
        level_features: bool = False,
        level_parts: int = 8,
        encoding: str = "omp",
        threshold: float = 0.25,
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
        self.scales = scales
        self.normalise = normalise
        self.pyramid = pyramid
        self.level_features = level_features
        self.level_parts = level_parts
        self.encoding = encoding
        self.threshold = threshold

    @classmethod
    def generic(cls, **params: Any) -> Codebook:
        """A codebook with :data:`GENERIC_PARAMS` (the setting for non-water 1-D signals),
        overridden by ``params``."""
        return cls(**{**GENERIC_PARAMS, **params})

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
        windows = self._windows(X, sample_rate_hz, resolve=True)
        atoms, n_found = [], 0
        for k in range(len(self.scales_)):
            found = self._informative_patches(windows, k)
            if k > 0 and self.scales == "auto" and len(found) < self.n_atoms:
                self.scales_ = self.scales_[:k]  # too few windows for atoms this coarse
                break
            n_found += len(found)
            self._require_patches(len(found), self.scales_[k])
            atoms.append(self._learn_atoms(found, rng))
        self.n_fit_patches_ = n_found
        self._set_atoms(np.concatenate(atoms))
        return self

    def _learn_atoms(self, found: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """``n_atoms`` atoms from informative patches ``found`` (one scale)."""
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
            return self._learner.components_
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
        return found[medoids.medoid_indices_]

    def partial_fit(
        self, X: Iterable[Any], y: Any = None, *, sample_rate_hz: int | None = None
    ) -> Codebook:
        """Update the atoms with one mini-batch of windows (``atom_method="dictionary"``).

        Continues the in-memory dictionary learner of earlier ``fit``/``partial_fit`` calls.
        A medoid codebook or one read by :meth:`load` has no learner state (its sufficient
        statistics are not saved), so it is refit with :meth:`fit` on the stored windows.
        One learner holds one scale: multi-scale codebooks are refit too.
        """
        self._check_params()
        if self.atom_method != "dictionary":
            raise ValueError(
                f"partial_fit needs atom_method='dictionary', got atom_method="
                f"{self.atom_method!r}: medoid atoms are refit from all windows with fit()."
            )
        if self.scales == "auto" or _plain_ints(self.scales) != (1,):
            raise ValueError(
                f"partial_fit needs scales=(1,), got scales={self.scales!r}: refit with fit()."
            )
        if hasattr(self, "components_") and not hasattr(self, "_learner"):
            raise ValueError(
                f"codebook {self.version_} was loaded from a file and has no learner state; "
                "refit it with fit() on the stored windows."
            )
        found = self._informative_patches(self._windows(X, sample_rate_hz, resolve=True), 0)
        if not hasattr(self, "_learner"):
            self._require_patches(len(found), 1)
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

        Columns are grouped by scale, then time segment; within a segment, per atom, the
        largest positive code and the largest negative code's magnitude (``pooling="split"``),
        the largest magnitude (``"abs"``) or those two and the two means (``"split_mean"``),
        0 when the atom is unused; then the level features when ``level_features`` is set, then
        the physical features when ``physical_features`` is set.
        """
        check_is_fitted(self, "components_")
        windows = self._windows(X, sample_rate_hz)
        out = np.zeros((len(windows), self.n_features_out_))
        width = self._per_segment
        n_segments = self._n_segments
        n_codes = len(self._scales) * n_segments * width
        n_level = self._n_level_features
        for length, members in _by_length(windows).items():
            slices = [self._segment_slices(length, s) for s in self._scales]
            for start in range(0, len(members), _WINDOWS_PER_CHUNK):
                rows = members[start : start + _WINDOWS_PER_CHUNK]
                stacked = np.stack([windows[i] for i in rows])
                scaled = self._normalised(stacked)
                for k in range(len(slices)):
                    if not any(sl.stop > sl.start for sl in slices[k]):
                        continue  # too short for this scale: its codes stay zero
                    codes = self._codes_of(scaled, k)
                    first = k * n_segments * width
                    for s, sl in enumerate(slices[k]):
                        if sl.stop > sl.start:
                            cols = slice(first + s * width, first + (s + 1) * width)
                            out[rows, cols] = self._pool(codes[:, sl])
                if n_level:
                    out[rows, n_codes : n_codes + n_level] = self._level(stacked, scaled)
        if self.physical_features:
            # batched: equal-length windows share one vectorised pass (docs/codebook.md, speed)
            out[:, n_codes + n_level :] = feature_matrix(windows, self.sample_rate_hz, self.pre_s)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``s{segment}_a{atom}{+|-}`` for the pooled codes (prefixed ``x{scale}_`` when there
        are several scales; ``+mean``/``-mean`` for mean pooling), then the level features,
        then the physical feature names."""
        check_is_fitted(self, "components_")
        signs = {"split": ("+", "-"), "abs": ("",), "split_mean": ("+", "-", "+mean", "-mean")}
        scales = self._scales
        names = [
            f"{f'x{scale}_' if len(scales) > 1 else ''}s{s}_a{a:03d}{sign}"
            for scale in scales
            for s in range(self._n_segments)
            for sign in signs[self.pooling]
            for a in range(self.n_atoms)
        ]
        if self.level_features:
            names += list(LEVEL_NAMES)
            names += [
                f"p{part}_level_{stat}"
                for part in range(self.level_parts)
                for stat in ("mean", "std")
            ]
        if self.physical_features:
            names += list(FEATURE_NAMES)
        return np.asarray(names, dtype=object)

    @property
    def n_features_out_(self) -> int:
        n_physical = len(FEATURE_NAMES) if self.physical_features else 0
        n_codes = len(self._scales) * self._n_segments * self._per_segment
        return n_codes + self._n_level_features + n_physical

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

    def resolved_params(self) -> dict[str, Any]:
        """``get_params()`` with ``scales`` as in use (``"auto"`` resolved at fit): what
        encoding depends on, and what :func:`content_version` hashes."""
        return {**self.get_params(), "scales": self._scales}

    def informative_patches(
        self, X: Iterable[Any], *, sample_rate_hz: int | None = None, scale_index: int = 0
    ) -> np.ndarray:
        """The patches of windows ``X`` that :meth:`fit` learns the atoms from at the scale
        ``scales_[scale_index]``: normalised (``normalise``), cut (``atom_length``, ``hop``),
        and loud enough (rms >= ``min_patch_rms``), in input order, shape (n, atom_length).

        Public so that what the atoms are made of can be inspected (medoid atoms are such
        patches, scaled to unit norm) without re-implementing the normalisation and cutting.
        """
        windows = self._windows(X, sample_rate_hz)
        return self._informative_patches(windows, scale_index)

    # ------------------------------------------------------------------ internals
    @property
    def _atom_length(self) -> int:
        return int(self.atom_length)

    @property
    def _scales(self) -> tuple[int, ...]:
        """``scales_`` after fit; otherwise the parameter (atoms set directly, as atlas does
        for stored and fleet codebooks)."""
        if hasattr(self, "scales_"):
            return self.scales_
        if self.scales == "auto":
            raise ValueError("scales='auto' is resolved by fit(); set scales_ with the atoms.")
        return _plain_ints(self.scales)

    @property
    def _hop(self) -> int:
        if self.hop is None:
            return max(1, self._atom_length // 2)
        if isinstance(self.hop, Integral):
            return int(self.hop)
        return max(1, round(self.hop * self._atom_length))  # a fraction of the atom

    @property
    def _n_segments(self) -> int:
        if self.pyramid is not None:
            return int(sum(self.pyramid))
        return len(self.segment_edges_s) + 1

    @property
    def _per_segment(self) -> int:
        return {"split": 2, "abs": 1, "split_mean": 4}[self.pooling] * self.n_atoms

    @property
    def _n_level_features(self) -> int:
        return len(LEVEL_NAMES) + 2 * self.level_parts if self.level_features else 0

    def _segment_slices(self, length: int, scale: int) -> list[slice]:
        """Per segment, the range of patches (at ``scale``) that it pools over."""
        n = length // scale
        if n < self._atom_length:
            return [slice(0, 0)] * self._n_segments
        if self.pyramid is not None:
            return _windows.pyramid_slices(n, self._atom_length, self._hop, self.pyramid)
        rate = self.sample_rate_hz if scale == 1 else self.sample_rate_hz / scale
        return _windows.segment_slices(n, self._atom_length, self._hop, rate, self.segment_edges_s)

    def _level(self, raw: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        """Level features of equal-length windows: raw mean, std, min, max; then per part the
        normalised window's mean and std (0 for a part with no sample)."""
        cols = [raw.mean(axis=1), raw.std(axis=1), raw.min(axis=1), raw.max(axis=1)]
        for start, stop in _windows.equal_parts(raw.shape[1], self.level_parts):
            part = scaled[:, start:stop]
            if part.shape[1]:
                cols += [part.mean(axis=1), part.std(axis=1)]
            else:
                cols += [np.zeros(len(raw)), np.zeros(len(raw))]
        return np.stack(cols, axis=1)

    def _pool(self, codes: np.ndarray) -> np.ndarray:
        """Pool codes of shape (n_windows, n_patches, n_atoms) over the patches.

        The sign of an oscillation's code is its phase at the patch, which jitters from one
        use to the next: a signed max-abs pooling turned that jitter into feature noise (up vs
        down chirps, 32 atoms, 3 seeds: 0.83-0.94 accuracy, against 1.00 for both options
        here). Pooling each sign apart keeps polarity (a drop vs a recovery) without the noise.
        """
        if self.pooling == "abs":
            return np.abs(codes).max(axis=1)
        pooled = [codes.max(axis=1).clip(min=0), (-codes.min(axis=1)).clip(min=0)]
        if self.pooling == "split_mean":
            pooled += [codes.clip(min=0).mean(axis=1), (-codes).clip(min=0).mean(axis=1)]
        return np.hstack(pooled)

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
        if self.scales != "auto":
            scales = np.asarray(self.scales)
            if (
                scales.ndim != 1
                or scales.size == 0
                or not all(isinstance(s, Integral) for s in self.scales)
                or np.any(scales < 1)
                or np.any(np.diff(scales) <= 0)
            ):
                raise ValueError(
                    f"scales={self.scales!r} should be 'auto' or positive, strictly increasing "
                    "integers."
                )
        if self.pyramid is not None and (
            len(self.pyramid) == 0
            or not all(isinstance(n, Integral) and n >= 1 for n in self.pyramid)
        ):
            raise ValueError(f"pyramid={self.pyramid!r} should be None or positive integers.")

    def _resolve(self, windows: list[np.ndarray]) -> None:
        """Set ``scales_`` from ``scales`` or, for ``"auto"``, from the shortest window."""
        shortest = min(x.size for x in windows)
        if self.scales == "auto":
            scales = [1]
            while len(scales) < AUTO_MAX_SCALES and 4 * scales[-1] * self.atom_length <= shortest:
                scales.append(2 * scales[-1])
            self.scales_ = tuple(scales)
        else:
            self.scales_ = _plain_ints(self.scales)

    def _require_patches(self, n_found: int, scale: int) -> None:
        if n_found < self.n_atoms:
            at = f" at scale {scale}" if scale != 1 else ""
            raise ValueError(
                f"only {n_found} informative patches{at} (rms >= min_patch_rms="
                f"{self.min_patch_rms}) in X; need at least n_atoms={self.n_atoms}: pass more "
                "or longer windows."
            )

    def _windows(
        self, X: Iterable[Any], sample_rate_hz: int | None, resolve: bool = False
    ) -> list[np.ndarray]:
        """Validated float64 windows; refuses any at a rate other than ``sample_rate_hz``.
        ``resolve`` (fit): first set ``scales_`` from these windows."""
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
            windows.append(x)
        if not windows:
            raise ValueError("X is empty: need at least one window.")
        if resolve:
            self._resolve(windows)
        atom_length = self._atom_length
        for i, x in enumerate(windows):
            if x.size < atom_length:
                raise ValueError(
                    f"X[{i}] has {x.size} samples, fewer than atom_length={atom_length}."
                )
        return windows

    def _normalised(self, stacked: np.ndarray) -> np.ndarray:
        """Equal-length windows normalised (``normalise``), at full resolution."""
        if self.normalise == "zscore":
            return _windows.zscore(stacked)
        pre_n = round(self.pre_s * self.sample_rate_hz)
        return _windows.normalise(stacked, min(pre_n, stacked.shape[1]))

    def _patches_at(self, scaled: np.ndarray, k: int) -> np.ndarray:
        """Patches (n_windows, n_patches, atom_length) of normalised windows at scale ``k``."""
        coarse = _windows.downsample(scaled, self._scales[k])
        return _windows.patches(coarse, self._atom_length, self._hop, self.center_patches)

    def _normalised_patches(self, stacked: np.ndarray, k: int = 0) -> np.ndarray:
        return self._patches_at(self._normalised(stacked), k)

    def _informative_patches(self, windows: list[np.ndarray], k: int = 0) -> np.ndarray:
        """All patches at scale index ``k`` loud enough to learn from, in input order, shape
        (n, atom_length)."""
        found = [np.zeros((0, self._atom_length))]
        for length, members in _by_length(windows).items():
            if length // self._scales[k] < self._atom_length:
                continue
            flat = self._normalised_patches(np.stack([windows[i] for i in members]), k)
            flat = flat.reshape(-1, self._atom_length)
            found.append(flat[_rms(flat) >= self.min_patch_rms])
        return np.concatenate(found)

    def _codes_of(self, scaled: np.ndarray, k: int) -> np.ndarray:
        """Dense codes of shape (n_windows, n_patches, n_atoms) at scale index ``k``; quiet
        patches stay zero."""
        pieces = self._patches_at(scaled, k)
        flat = pieces.reshape(-1, self._atom_length)
        loud = np.nonzero(_rms(flat) >= self.min_patch_rms)[0]
        codes = np.zeros((flat.shape[0], self.n_atoms))
        if loud.size:
            atoms = self.components_[k * self.n_atoms : (k + 1) * self.n_atoms]
            if self.encoding == "threshold":
                codes[loud] = soft_threshold(flat[loud], atoms, self.threshold)
            else:
                indices, coefs = omp_batch(flat[loud], atoms, self.n_nonzero_coefs)
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
        self.version_ = content_version(self.resolved_params(), self.components_)


def soft_threshold(patches: np.ndarray, atoms: np.ndarray, threshold: float) -> np.ndarray:
    """Each patch's correlation with each unit-norm atom, shrunk towards 0 by ``threshold``
    times the patch's norm (so only atoms whose cosine with the patch exceeds ``threshold``
    are kept, with their size in the patch's units): Coates & Ng's soft-threshold encoding."""
    corr = patches @ atoms.T
    shrink = threshold * np.linalg.norm(patches, axis=1, keepdims=True)
    return np.sign(corr) * np.maximum(np.abs(corr) - shrink, 0.0)


def _plain_ints(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _rms(flat: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(flat * flat, axis=1))


def _by_length(windows: list[np.ndarray]) -> dict[int, list[int]]:
    """Window indices grouped by length, so each group is encoded as one stacked array."""
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(windows):
        groups.setdefault(x.size, []).append(i)
    return groups
