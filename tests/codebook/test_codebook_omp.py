from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import orthogonal_mp_gram

from codebook import omp_batch


@pytest.mark.parametrize("n_nonzero_coefs", [1, 3, 5])
def test_batched_omp_matches_scikit_learn(n_nonzero_coefs):
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(24, 32))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    signals = rng.normal(size=(300, 32))
    # several chunks, including a ragged last one
    indices, coefs = omp_batch(signals, dictionary, n_nonzero_coefs, chunk=64)
    dense = np.zeros((300, 24))
    np.put_along_axis(dense, indices, coefs, axis=1)
    gram = dictionary @ dictionary.T
    expected = orthogonal_mp_gram(gram, (signals @ dictionary.T).T, n_nonzero_coefs=n_nonzero_coefs)
    np.testing.assert_allclose(dense, expected.T, atol=1e-8)
    assert np.all(np.count_nonzero(dense, axis=1) == n_nonzero_coefs)


def test_exact_sparse_signal_is_recovered():
    rng = np.random.default_rng(1)
    dictionary = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    signal = 2.0 * dictionary[3] - 0.5 * dictionary[9]
    indices, coefs = omp_batch(signal[None], dictionary, 2)
    assert sorted(indices[0]) == [3, 9]
    np.testing.assert_allclose(sorted(coefs[0]), [-0.5, 2.0], atol=1e-9)


def test_refuses_more_coefficients_than_atoms():
    with pytest.raises(ValueError, match="n_nonzero_coefs=5"):
        omp_batch(np.ones((2, 4)), np.eye(4), 5)
