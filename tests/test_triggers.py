import numpy as np
import pandas as pd
import pytest

from indicators.triggers import (
    eigenvalue_change,
    eigenvalue_trigger,
    largest_eigenvalue,
    rc_deviation_trigger,
    regime_change_points,
    regime_changed,
    relative_risk_contribution,
)


def _corr(rho, n=4):
    return np.full((n, n), rho) + (1 - rho) * np.eye(n)


def test_regime_change():
    assert regime_changed("recovery/low", "expansion/low")
    assert not regime_changed(None, "expansion/low") and not regime_changed("a", "a")
    pts = regime_change_points(pd.Series([None, "a", "a", "b", None, "b"]))
    assert pts.tolist() == [False, False, False, True, False, False]


def test_eigenvalue_trigger():
    assert largest_eigenvalue(_corr(0.5)) == pytest.approx(1 + 3 * 0.5)
    assert eigenvalue_change(_corr(0.6), _corr(0.5)) == pytest.approx(2.8 / 2.5 - 1)
    assert not eigenvalue_trigger(_corr(0.6), _corr(0.5))  # +12% < 15%
    assert eigenvalue_trigger(_corr(0.7), _corr(0.5))  # +24%
    assert eigenvalue_trigger(_corr(0.3), _corr(0.5))  # -24%


def test_rc_trigger():
    cov = np.diag([0.04, 0.01])
    rc = relative_risk_contribution([0.5, 0.5], cov)
    np.testing.assert_allclose(rc, [0.8, 0.2])
    assert rc_deviation_trigger([0.5, 0.5], cov, [0.5, 0.5])
    assert not rc_deviation_trigger([0.5, 0.5], cov, [0.75, 0.25])
