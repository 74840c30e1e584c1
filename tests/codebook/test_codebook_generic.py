"""The generic mode and the guarantee that the water mode did not change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifierCV
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from atlas.transient import FEATURE_NAMES, feature_matrix
from codebook import (
    GENERIC_PARAMS,
    Codebook,
    content_version,
    equal_parts,
    pyramid_slices,
    soft_threshold,
)

FIXTURE = Path(__file__).parent / "data" / "water_default_v0.npz"
SMALL = {"n_atoms": 16, "random_state": 0}


def _bursts(n: int, length: int, rng: np.random.Generator, shape: str) -> list[np.ndarray]:
    """Series of ``length`` samples: noise plus one 24-sample burst at a random place;
    ``shape`` "sine" (one period) or "ramp" (a sawtooth of the same length)."""
    t = np.arange(24)
    burst = np.sin(2 * np.pi * t / 24) if shape == "sine" else 2 * t / 23 - 1
    out = []
    for _ in range(n):
        x = rng.normal(0, 0.05, length)
        start = rng.integers(0, length - 24)
        x[start : start + 24] += 2 * burst
        out.append(x)
    return out


@pytest.fixture(scope="module")
def bursts() -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    waves = _bursts(30, 128, rng, "sine") + _bursts(30, 128, rng, "ramp")
    return waves, np.repeat([0, 1], 30)


def test_default_water_mode_unchanged_from_the_stored_fixture():
    """Atoms, version and code columns bit for bit as computed by the codebook before the
    generic mode existed (tests/codebook/data, default parameters, simulated two_bath_house
    windows of 1,750 and 1,000 samples). The codes are compared to 1e-12: they come out of BLAS
    products whose last bit differs between numpy/scipy builds (~7e-15 seen), which a changed
    encoding would exceed by many orders of magnitude."""
    with np.load(FIXTURE) as data:
        windows = np.split(data["samples"].astype(np.float64), np.cumsum(data["lengths"])[:-1])
        components, codes, version = data["components"], data["codes"], str(data["version"])
    cb = Codebook(random_state=0).fit(windows)
    assert np.array_equal(cb.components_.view(np.uint64), components.view(np.uint64))
    assert cb.version_ == version
    features = cb.transform(windows)
    np.testing.assert_allclose(features[:, : codes.shape[1]], codes, rtol=0, atol=1e-12)
    physical = feature_matrix(windows, cb.sample_rate_hz, cb.pre_s)
    assert np.array_equal(features[:, codes.shape[1] :], physical)
    assert features.shape[1] == codes.shape[1] + len(FEATURE_NAMES)


def test_generic_mode_handles_variable_length_series():
    rng = np.random.default_rng(1)
    lengths = [20, 300, 90, 150, 300, 60] * 5
    waves = [np.sin(np.arange(n) / rng.uniform(2, 6)) + rng.normal(0, 0.1, n) for n in lengths]
    cb = Codebook.generic(**SMALL).fit(waves)
    assert cb.scales_ == (1,)  # the shortest series (20) is shorter than 2 atoms of 7 x 2
    wide = Codebook.generic(**SMALL).fit([w for w in waves if w.size >= 150])
    assert wide.scales_ == (1, 2, 4, 8)  # 150 >= 2 atoms of 7 x 8 samples, < 2 of 7 x 16
    features = wide.transform(waves)
    assert features.shape == (len(waves), wide.n_features_out_)
    assert np.all(np.isfinite(features))
    for i in (0, 1, 5):  # encoding in a mixed batch = encoding alone
        np.testing.assert_allclose(features[i], wide.transform([waves[i]])[0], rtol=1e-10)
    # 20 samples hold an atom of 7 x 2 samples, not of 7 x 4: zero codes at scales 4 and 8 only
    per_scale = wide.n_atoms * 4  # one pooling segment, four statistics per atom
    assert np.all(features[0, 2 * per_scale : 4 * per_scale] == 0)
    assert np.any(features[0, per_scale : 2 * per_scale] != 0)
    assert np.any(features[1, 3 * per_scale : 4 * per_scale] != 0)


def test_generic_pooling_is_shift_invariant_where_segments_are_not(bursts):
    """Moving a burst within a flat background leaves the generic features unchanged (the
    whole window is one pooling segment); the water mode's time segments move with it."""
    x = np.zeros(256)
    x[80:104] = np.sin(2 * np.pi * np.arange(24) / 24)
    shifted = np.roll(x, 80)  # by whole blocks of the coarsest scale (8), away from the ends
    waves, _ = bursts
    generic = Codebook.generic(**SMALL).fit(waves)
    codes = slice(0, generic.n_features_out_ - 4 - 2 * generic.level_parts)  # no level columns
    a, b = generic.transform([x, shifted])[:, codes]
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert np.count_nonzero(a) > 0
    timed = Codebook(
        n_atoms=16,
        atom_length=8,
        sample_rate_hz=256,
        pre_s=0.0,
        segment_edges_s=(0.25, 0.5, 0.75),
        physical_features=False,
        random_state=0,
    )
    a, b = timed.fit(waves).transform([x, shifted])
    assert not np.allclose(a, b)


def test_generic_codes_tell_burst_shapes_apart_wherever_they_occur(bursts):
    waves, labels = bursts
    features = Codebook.generic(**SMALL).fit(waves).transform(waves)
    model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    assert cross_val_score(model, features, labels, cv=3).mean() >= 0.9


def test_level_features_keep_the_amplitude_that_normalising_removes(bursts):
    """Same shapes at two amplitudes: the codes (z-scored windows) cannot tell them apart, the
    raw level columns can."""
    waves, _ = bursts
    quiet = waves[:20]
    loud = [3.0 * w for w in quiet]
    cb = Codebook.generic(**SMALL).fit(quiet + loud)
    features = cb.transform(quiet + loud)
    names = list(cb.get_feature_names_out())
    n_level = 4 + 2 * cb.level_parts
    assert names[-n_level:][:4] == ["level_mean", "level_std", "level_min", "level_max"]
    codes = features[:, :-n_level]
    np.testing.assert_allclose(codes[:20], codes[20:], atol=1e-9)
    std = features[:, names.index("level_std")]
    np.testing.assert_allclose(std, [np.std(w) for w in quiet + loud])
    assert np.all(std[20:] > 2.9 * std[:20])
    off = Codebook.generic(**SMALL, level_features=False).fit(quiet)
    assert off.transform(quiet).shape[1] == cb.n_features_out_ - n_level


def test_generic_save_load_keeps_resolved_scales_codes_and_version(bursts, tmp_path):
    waves, _ = bursts
    cb = Codebook.generic(**SMALL).fit(waves)
    assert cb.components_.shape == (len(cb.scales_) * 16, GENERIC_PARAMS["atom_length"])
    version = cb.save(tmp_path / "generic.npz")
    loaded = Codebook.load(tmp_path / "generic.npz")
    assert loaded.version_ == version and loaded.scales_ == cb.scales_
    np.testing.assert_array_equal(loaded.transform(waves[:5]), cb.transform(waves[:5]))
    # the same atoms under other encoding settings are another version
    water = Codebook(**{**cb.get_params(), "pyramid": None, "encoding": "omp"})
    other = content_version({**water.get_params(), "scales": cb.scales_}, cb.components_)
    assert other != version


def test_pyramid_segments_cut_the_patches_by_their_centres():
    # 10 patches of 10 samples, centres 5, 15, ..., 95: the whole window, then halves at 50
    assert pyramid_slices(100, 10, 10, (1, 2)) == [slice(0, 10), slice(0, 5), slice(5, 10)]
    # a 200-sample window gives the same segments relative to its length
    assert pyramid_slices(200, 10, 10, (2,)) == [slice(0, 10), slice(10, 20)]
    assert pyramid_slices(8, 10, 10, (1, 2)) == [slice(0, 0)] * 3  # no patch fits
    assert equal_parts(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]


def test_soft_threshold_keeps_atoms_whose_cosine_exceeds_the_threshold():
    atoms = np.eye(4)
    patch = np.array([[3.0, -4.0, 0.0, 0.0]])  # norm 5: cosines 0.6, -0.8, 0, 0
    np.testing.assert_allclose(soft_threshold(patch, atoms, 0.7), [[0.0, -0.5, 0.0, 0.0]])
    np.testing.assert_allclose(soft_threshold(patch, atoms, 0.0), patch)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"scales": (2, 1)}, "scales="),
        ({"scales": (1.5,)}, "scales="),
        ({"pyramid": (0,)}, "pyramid="),
        ({"encoding": "lasso"}, "encoding"),
        ({"hop": 1.5}, "hop"),
    ],
)
def test_bad_generic_parameters_are_named(bursts, params, match):
    waves, _ = bursts
    with pytest.raises(ValueError, match=match):
        Codebook.generic(**SMALL, **params).fit(waves)


def test_partial_fit_refuses_several_scales(bursts):
    waves, _ = bursts
    with pytest.raises(ValueError, match="scales=\\(1,\\)"):
        Codebook.generic(**SMALL, atom_method="dictionary").partial_fit(waves)
