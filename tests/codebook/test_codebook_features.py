from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from atlas.transient import FEATURE_NAMES, transient_features
from codebook import Codebook, content_version

RATE = 1000
N_SAMPLES = 1750
# small enough to fit in ~2 s; segment 0 ends 0.2 s in, one patch before the chirps' onset
SMALL = {
    "n_atoms": 32,
    "atom_length": 32,
    "max_iter": 5,
    "max_fit_patches": 2000,
    "atom_method": "dictionary",
    "segment_edges_s": (0.2, 0.35, 0.5, 0.75, 1.0),
    "random_state": 0,
}
N_ATOMS = SMALL["n_atoms"]


@pytest.fixture(scope="module")
def fitted(chirp_families) -> Codebook:
    waves, _ = chirp_families
    return Codebook(**SMALL).fit(waves)


def test_transform_shape_and_feature_names(fitted, chirp_families):
    waves, _ = chirp_families
    features = fitted.transform(waves[:5])
    n_segments = len(fitted.segment_edges_s) + 1
    assert features.shape == (5, 2 * n_segments * N_ATOMS + len(FEATURE_NAMES))
    names = fitted.get_feature_names_out()
    assert len(names) == features.shape[1]
    assert list(names[-len(FEATURE_NAMES) :]) == list(FEATURE_NAMES)
    assert fitted.components_.shape == (N_ATOMS, 32)
    np.testing.assert_allclose(np.linalg.norm(fitted.components_, axis=1), 1.0)


def test_codes_are_mostly_zero(chirp_families):
    """Default sizes (64 atoms of 64 samples, 6 segments); medoid atoms only to fit fast."""
    waves, _ = chirp_families
    cb = Codebook(atom_method="medoids", physical_features=False, random_state=0).fit(waves)
    codes = cb.transform(waves)
    assert codes.shape == (len(waves), 6 * 2 * 64)
    assert np.mean(codes == 0) > 0.6
    assert np.all(np.count_nonzero(codes, axis=1) > 0)


def test_pre_onset_segment_is_silent_for_a_quiet_baseline(fitted, chirp_families):
    """Patches of segment 0 end before the 0.25 s onset and hold noise below min_patch_rms."""
    waves, _ = chirp_families
    codes = fitted.transform(waves[:10])
    assert np.all(codes[:, : 2 * N_ATOMS] == 0)
    assert np.all(np.any(codes[:, 2 * N_ATOMS : 4 * N_ATOMS] != 0, axis=1))


def test_same_seed_same_atoms_and_version(fitted, chirp_families):
    waves, _ = chirp_families
    a = fitted
    b = Codebook(**SMALL).fit(waves)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.version_ == b.version_
    c = Codebook(**{**SMALL, "random_state": 1}).fit(waves)
    assert c.version_ != a.version_


def test_medoid_atoms_are_real_normalised_patches(chirp_families):
    waves, _ = chirp_families
    cb = Codebook(**{**SMALL, "atom_method": "medoids"}).fit(waves)
    again = Codebook(**{**SMALL, "atom_method": "medoids"}).fit(waves)
    np.testing.assert_array_equal(cb.components_, again.components_)
    patches = cb.informative_patches(waves)
    patches /= np.linalg.norm(patches, axis=1, keepdims=True)
    for atom in cb.components_:
        assert np.min(np.linalg.norm(patches - atom, axis=1)) < 1e-12


def test_save_load_round_trip_gives_identical_codes_and_version(fitted, chirp_families, tmp_path):
    waves, _ = chirp_families
    path = tmp_path / "cb.npz"
    version = fitted.save(path)
    loaded = Codebook.load(path)
    assert loaded.version_ == version == fitted.version_
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.transform(waves[:8]), fitted.transform(waves[:8]))


def test_load_refuses_edited_atoms(fitted, tmp_path):
    path = tmp_path / "cb.npz"
    fitted.save(path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["components"] = arrays["components"] * 1.0001
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="corrupted or was edited"):
        Codebook.load(path)


def test_version_ignores_learning_only_parameters(fitted):
    twin = Codebook(**{**SMALL, "alpha": 0.5, "max_iter": 50, "random_state": 9})
    assert content_version(twin.get_params(), fitted.components_) == fitted.version_
    other = Codebook(**{**SMALL, "n_nonzero_coefs": 2})
    assert content_version(other.get_params(), fitted.components_) != fitted.version_
    nudged = fitted.components_.copy()
    nudged[0, 0] += 1e-12
    assert content_version(fitted.get_params(), nudged) != fitted.version_


class _Window:
    def __init__(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        self.samples = samples
        self.sample_rate_hz = sample_rate_hz


def test_refuses_wrong_sample_rate_keyword(fitted, chirp_families):
    waves, _ = chirp_families
    with pytest.raises(ValueError, match=r"sample_rate_hz=2000 differs .* sample_rate_hz=1000"):
        fitted.transform(waves[:2], sample_rate_hz=2000)
    assert fitted.transform(waves[:2], sample_rate_hz=RATE).shape[0] == 2


def test_refuses_event_like_item_at_wrong_rate(fitted, chirp_families):
    waves, _ = chirp_families
    items = [_Window(waves[0], RATE), _Window(waves[1], 500)]
    with pytest.raises(ValueError, match=r"X\[1\] has sample_rate_hz=500"):
        fitted.transform(items)
    np.testing.assert_array_equal(
        fitted.transform([_Window(waves[0], RATE)]), fitted.transform([waves[0]])
    )


def test_fit_refuses_wrong_sample_rate(chirp_families):
    waves, _ = chirp_families
    with pytest.raises(ValueError, match="sample_rate_hz=500"):
        Codebook(**SMALL).fit(waves, sample_rate_hz=500)


def test_mixed_window_lengths(fitted, make_chirp):
    rng = np.random.default_rng(3)
    lengths = (N_SAMPLES, 1000, 600, N_SAMPLES, 1000)
    waves = [make_chirp(10, 80, rng, n) for n in lengths]
    features = fitted.transform(waves)
    assert features.shape[0] == len(lengths)
    for i, wave in enumerate(waves):  # grouping by length must not mix rows up
        np.testing.assert_allclose(features[i], fitted.transform([wave])[0], rtol=1e-10)
    # a 0.6 s window never reaches the last segment (>= 1.0 s): its codes there are zero
    last = slice(10 * N_ATOMS, 12 * N_ATOMS)
    assert np.all(features[2, last] == 0) and np.any(features[0, last] != 0)


def test_physical_columns_are_the_per_window_transient_features(fitted, make_chirp):
    """The batched physical features equal atlas.transient's per-window ones, bit for bit,
    whatever the mix of lengths and their order in X."""
    rng = np.random.default_rng(5)
    lengths = [N_SAMPLES] * 12 + [1000] * 9 + [600, 800]
    rng.shuffle(lengths)
    waves = [make_chirp(rng.uniform(5, 20), rng.uniform(60, 120), rng, n) for n in lengths]
    physical = fitted.transform(waves)[:, -len(FEATURE_NAMES) :]
    expected = np.stack([transient_features(w, RATE, fitted.pre_s).as_vector() for w in waves])
    assert np.array_equal(physical.view(np.uint64), expected.view(np.uint64))


def test_codes_separate_two_chirp_families(chirp_families):
    """Codes alone (no physical features) tell up-chirps from down-chirps far above chance."""
    waves, labels = chirp_families
    codes = Codebook(**{**SMALL, "physical_features": False}).fit(waves).transform(waves)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    assert cross_val_score(model, codes, labels, cv=4).mean() >= 0.9


def test_partial_fit_updates_atoms_and_version(chirp_families):
    waves, _ = chirp_families
    cb = Codebook(**SMALL).partial_fit(waves[:40])
    first = cb.version_
    cb.partial_fit(waves[40:])
    assert cb.version_ != first
    assert cb.transform(waves[:3]).shape[0] == 3


def test_partial_fit_refused_after_load_and_for_medoids(fitted, chirp_families, tmp_path):
    waves, _ = chirp_families
    fitted.save(tmp_path / "cb.npz")
    with pytest.raises(ValueError, match="refit it with fit"):
        Codebook.load(tmp_path / "cb.npz").partial_fit(waves)
    with pytest.raises(ValueError, match="atom_method='dictionary'"):
        Codebook(**{**SMALL, "atom_method": "medoids"}).partial_fit(waves)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"segment_edges_s": (0.5, 0.25)}, "segment_edges_s"),
        ({"n_nonzero_coefs": 40}, "n_nonzero_coefs=40"),
        ({"atom_method": "kmeans"}, "atom_method"),
    ],
)
def test_bad_parameters_are_named(chirp_families, params, match):
    waves, _ = chirp_families
    with pytest.raises(ValueError, match=match):
        Codebook(**{**SMALL, **params}).fit(waves)


def test_too_few_informative_patches_is_explained():
    flat = [np.zeros(N_SAMPLES) for _ in range(3)]
    with pytest.raises(ValueError, match="informative patches"):
        Codebook(**SMALL).fit(flat)


def test_window_shorter_than_an_atom_is_refused(fitted):
    with pytest.raises(ValueError, match=r"X\[0\] has 10 samples"):
        fitted.transform([np.ones(10)])


def test_split_pooling_is_non_negative_and_abs_pooling_is_its_maximum(fitted, chirp_families):
    waves, _ = chirp_families
    split = fitted.transform(waves[:6])[:, : -len(FEATURE_NAMES)]
    assert np.all(split >= 0)
    as_abs = Codebook(**{**SMALL, "pooling": "abs"})
    as_abs.components_ = fitted.components_
    absolute = as_abs.transform(waves[:6])[:, : -len(FEATURE_NAMES)]
    pairs = split.reshape(6, -1, 2, N_ATOMS)  # (window, segment, sign, atom)
    np.testing.assert_array_equal(absolute.reshape(6, -1, N_ATOMS), pairs.max(axis=2))
    assert list(as_abs.get_feature_names_out()[:2]) == ["s0_a000", "s0_a001"]
    assert list(fitted.get_feature_names_out()[[0, N_ATOMS]]) == ["s0_a000+", "s0_a000-"]
