import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError
from indicators.covariance import (
    ewma_init,
    ewma_update,
    ledoit_wolf_covariance,
    rolling_covariance,
    sample_covariance,
)

RNG = np.random.default_rng(5)
X = RNG.standard_normal((120, 4)) @ np.array([[1, 0.5, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, 0.2], [0, 0, 0, 1]]) * 0.01


def test_sample_and_ledoit_wolf():
    np.testing.assert_allclose(sample_covariance(X[:20]), np.cov(X[:20], rowvar=False), rtol=1e-12)
    sk = pytest.importorskip("sklearn.covariance")
    np.testing.assert_allclose(ledoit_wolf_covariance(X[:20]), sk.ledoit_wolf(X[:20])[0], rtol=1e-10)


def test_rolling_methods_annualized_pd_and_causal():
    df = pd.DataFrame(X)
    for m in ("sample", "ewma", "ledoit_wolf"):
        c = rolling_covariance(df, m)
        assert np.isnan(c[18]).all() and np.isfinite(c[19]).all()
        for t in (19, 60, 119):
            assert np.all(np.linalg.eigvalsh(c[t]) > 0)
            np.testing.assert_allclose(c[t], c[t].T)
        np.testing.assert_array_equal(rolling_covariance(df.iloc[:70], m)[:70], c[:70])
    np.testing.assert_allclose(rolling_covariance(df, "sample")[50], 252 * np.cov(X[31:51], rowvar=False))
    s = ewma_init(X[:20])
    for t in range(20, 40):
        s = ewma_update(s, X[t], 0.94)
    np.testing.assert_allclose(rolling_covariance(df, "ewma")[39], 252 * s, rtol=1e-12)


def test_singular_sample_is_repaired():
    x = np.tile(X[:20, :1], (1, 3))  # three identical assets
    c = rolling_covariance(x, "sample")
    assert np.all(np.linalg.eigvalsh(c[19]) > 0)


def test_unknown_method():
    with pytest.raises(DataError):
        rolling_covariance(X, "garch")
