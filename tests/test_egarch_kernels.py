"""The numba kernels of indicators.egarch against their pure-Python twins (same source, interpreted)."""

import numpy as np
import pytest

from indicators import egarch as eg


def _window(seed: int, n: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = 1.2 * rng.standard_t(5, n)
    if ties:  # returns equal to the mean and exact zeros: the sign / kink branches
        y[::7] = 0.0
        y[5] = y.mean()
    backcast, vb, res0 = eg._prepare(y)
    return y, backcast, vb, res0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ewma_bounds_twin(seed):
    _, _, _, res0 = _window(seed)
    init_c, vb_c = eg._ewma_bounds_kernel(res0)
    init_p, vb_p = eg._ewma_bounds_kernel_py(res0)
    assert init_c == pytest.approx(init_p, rel=1e-12)
    np.testing.assert_allclose(vb_c, vb_p, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True)])
def test_filter_twin(seed, ties):
    y, backcast, vb, _ = _window(seed, ties=ties)
    params = np.array([0.05, 0.01, 0.15, -0.08, 0.97])
    lns_c, z_c = eg._filter_kernel(params, y, backcast, vb)
    lns_p, z_p = eg._filter_kernel_py(params, y, backcast, vb)
    np.testing.assert_allclose(lns_c, lns_p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z_c, z_p, rtol=1e-12, atol=1e-12)


def test_filter_twin_hits_variance_bounds():
    """An explosive parameter set drives the path onto arch's upper variance bound (that branch)."""
    y, backcast, vb, _ = _window(3)
    params = np.array([0.0, 3.0, 1.4, 0.0, 0.999])
    lns_c, z_c = eg._filter_kernel(params, y, backcast, vb)
    lns_p, z_p = eg._filter_kernel_py(params, y, backcast, vb)
    assert np.any(np.exp(lns_p) >= vb[:, 1])
    np.testing.assert_allclose(lns_c, lns_p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z_c, z_p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("student,ties", [(True, False), (False, False), (True, True)])
def test_nll_grad_twin(student, ties):
    y, backcast, vb, _ = _window(4, ties=ties)
    params = np.array([0.03, 0.02, 0.12, -0.06, 0.95] + ([7.0] if student else []))
    ll_c, g_c = eg._nll_grad_kernel(params, y, backcast, vb, student)
    ll_p, g_p = eg._nll_grad_kernel_py(params, y, backcast, vb, student)
    assert ll_c == pytest.approx(ll_p, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(g_c, g_p, rtol=1e-12, atol=1e-12)


def test_nll_grad_twin_matches_finite_differences():
    """The twins agree with each other; the Python one is also the analytic gradient of its value."""
    y, backcast, vb, _ = _window(5)
    params = np.array([0.03, 0.02, 0.12, -0.06, 0.95, 7.0])
    _, g = eg._nll_grad_kernel_py(params, y, backcast, vb, True)
    for i in range(params.shape[0]):
        h = 1e-6
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        fd = (eg._nll_grad_kernel_py(up, y, backcast, vb, True)[0]
              - eg._nll_grad_kernel_py(dn, y, backcast, vb, True)[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("params", [[0.03, 0.02, 0.12, -0.06, 0.95, 7.0], [0.0, -0.5, 1.2, -0.9, 0.9, 7.0]])
def test_lyap_grad_twin_and_reference(params):
    """Compiled vs Python twin to 1e-12; the value equals :func:`_lyapunov` (numpy formula) and the
    gradient its central differences."""
    y, backcast, vb, _ = _window(6, n=400)
    p = np.array(params)
    val_c, g_c = eg._lyap_grad_kernel(p, y, backcast, vb)
    val_p, g_p = eg._lyap_grad_kernel_py(p, y, backcast, vb)
    assert val_c == pytest.approx(val_p, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(g_c, g_p, rtol=1e-12, atol=1e-12)
    assert val_p == pytest.approx(eg._lyapunov(p, y, backcast, vb), rel=1e-12, abs=1e-14)
    for i in range(5):
        up, dn = p.copy(), p.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        fd = (eg._lyapunov(up, y, backcast, vb) - eg._lyapunov(dn, y, backcast, vb)) / 2e-6
        assert g_p[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_lyap_grad_at_zero_derivative():
    """beta = alpha = gamma = 0 (an arch optimum seen on noise): every term is at the 1e-300 floor,
    value and gradient stay finite (no division by zero) and the twins agree."""
    y, backcast, vb, _ = _window(7)
    p = np.array([0.0, 0.3, 0.0, 0.0, 0.0, 7.0])
    val_c, g_c = eg._lyap_grad_kernel(p, y, backcast, vb)
    val_p, g_p = eg._lyap_grad_kernel_py(p, y, backcast, vb)
    assert val_p == pytest.approx(eg._lyapunov(p, y, backcast, vb), rel=1e-12)
    assert np.all(np.isfinite(g_p))
    assert val_c == pytest.approx(val_p, rel=1e-12)
    np.testing.assert_allclose(g_c, g_p, rtol=1e-12)


@pytest.mark.parametrize("seed,ties", [(0, False), (5, True)])
def test_start_grid_twin(seed, ties):
    _, backcast, vb, res0 = _window(seed, ties=ties)
    beta = eg._START_GRID[:, 2]
    grid = np.column_stack([(1.0 - beta) * np.log(np.mean(res0**2)), eg._START_GRID])
    got_c = eg._start_grid_kernel(res0, backcast, vb, grid)
    got_p = eg._start_grid_kernel_py(res0, backcast, vb, grid)
    np.testing.assert_allclose(got_c, got_p, rtol=1e-12)
    # each entry is the Gaussian log-likelihood of the residuals under that row's filter
    lns, z = eg._filter_kernel(np.concatenate([[0.0], grid[7]]), res0, backcast, vb)
    want = -0.5 * np.sum(np.log(2 * np.pi) + lns + z**2)
    assert got_c[7] == pytest.approx(want, rel=1e-12)
