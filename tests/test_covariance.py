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


# ---------------------------------------------------------------------------- estimator classes
def _old_rolling(x: np.ndarray, method: str, w: int = 20, lam: float = 0.94, ppy: int = 252) -> np.ndarray:
    """The vectorized path of the risk model before the estimator classes (its string switch)."""
    from indicators.covariance import make_pd

    T, n = x.shape
    cov = np.full((T, n, n), np.nan)
    s = None
    for t in range(w - 1, T):
        if method == "ewma":
            s = ewma_init(x[: t + 1]) if s is None else ewma_update(s, x[t], lam)
            cov[t] = make_pd(s * ppy)[0]
        else:
            est = sample_covariance if method == "sample" else ledoit_wolf_covariance
            cov[t] = make_pd(est(x[t + 1 - w : t + 1]) * ppy)[0]
    return cov


@pytest.mark.parametrize("method", ["sample", "ewma", "ledoit_wolf"])
def test_estimator_classes_are_bit_identical_to_the_old_formulas(method):
    from indicators.covariance import annualized_pd, make_estimator
    from indicators.risk_model import RiskModel

    x = np.vstack([X, np.tile(X[:25, :1], (1, 4))])  # the last rows are singular: PD repairs
    want = _old_rolling(x, method, w=25, lam=0.9)
    np.testing.assert_array_equal(rolling_covariance(x, method, sample_window=25, ewma_lambda=0.9), want)
    est, model = make_estimator(method, 4, sample_window=25, ewma_lambda=0.9), RiskModel(4, method, sample_window=25, ewma_lambda=0.9)
    for t, row in enumerate(x):
        est.update(row)
        model.update(row)
        raw = est.forecast()
        assert (raw is None) == (t < 24) == (not model.ready)
        if raw is not None:
            np.testing.assert_array_equal(annualized_pd(raw, 252)[0], want[t])
            np.testing.assert_array_equal(model.cov, want[t])
    assert (model.n_repairs > 0 or method != "sample") and model.n_refits == 0 and model.fit_stats["refits"] == 0


def test_registry_names_every_estimator_once():
    from indicators.covariance import ESTIMATORS, METHODS, CovarianceEstimator, make_estimator

    assert METHODS == ("egarch_dcc", "sample", "ewma", "ledoit_wolf") == tuple(ESTIMATORS)
    for name, cls in ESTIMATORS.items():
        assert issubclass(cls, CovarianceEstimator) and cls.name == name
        est = make_estimator(name, 3, window=60, min_window=30, sample_window=5)
        assert type(est) is cls and est.forecast() is None
    with pytest.raises(DataError, match="unknown covariance method 'garch'"):
        make_estimator("garch", 2)
    with pytest.raises(TypeError, match="lamda"):
        make_estimator("ewma", 2, lamda=0.9)
    with pytest.raises(DataError):
        make_estimator("ewma", 2, ewma_lambda=1.0)


def test_risk_model_state_of_the_old_layout_continues():
    """A version-1 state written by the string-switch model (recorded: EWMA after 4 rows) loads
    and its next forecast is the one the old model gave (float.hex)."""
    from indicators.risk_model import RiskModel

    old = {"version": 1, "config": {"n_assets": 2, "method": "ewma", "window": 750, "min_window": 250,
           "refit_every": 21, "dist": "t", "sample_window": 3, "ewma_lambda": 0.5, "periods_per_year": 252,
           "engine": "fast"}, "n_updates": 4, "n_repairs": 0,
           "buf": [[0.015, 0.005], [-0.01, 0.02], [0.0, -0.005]], "lns": None, "qbar": None, "q": None,
           "ewma": [[7.083333333333332e-05, -5.4166666666666664e-05], [-5.4166666666666664e-05, 0.00015000000000000001]],
           "cov": [[0.017849999999999998, -0.013649999999999999], [-0.013649999999999999, 0.0378]],
           "fit": {"params": None, "ln_bounds": None, "a": None, "b": None, "n_refits": 0, "n_failed": 0,
                   "n_dcc_failed": 0, "tally": {"counts": [[0, 0]] * 4, "failed_run": [0, 0],
                   "longest_failed_run": [0, 0]}, "warned": [False, False]}}  # fmt: skip
    m = RiskModel.from_state(old)
    assert m.n_updates == 4 and m.ready
    m.update([0.02, 0.01])
    want = ["0x1.e5fd8adab9f56p-5", "0x1.2d0e560418938p-6", "0x1.2d0e560418938p-6", "0x1.020c49ba5e354p-5"]
    assert [float.hex(float(v)) for v in m.cov.ravel()] == want


def _imports(path: str) -> set[str]:
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[1] / path).read_text())
    out = set()
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module or "")
    return out


def test_indicator_modules_import_no_upper_layer_and_covariance_not_the_risk_model():
    mods = ["__init__", "covariance", "risk_model", "dcc", "egarch", "regimes", "markov", "macro", "triggers", "bt_indicators"]
    for mod in mods:
        imported = _imports(f"indicators/{mod}.py")
        bad = [m for m in imported if m.split(".")[0] in ("strategies", "runners", "feeds")]
        assert not bad, (mod, bad)
        if mod != "bt_indicators":
            assert "backtrader" not in imported, mod
    assert "indicators.risk_model" not in _imports("indicators/covariance.py")


def test_importing_the_risk_model_does_not_load_backtrader():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, indicators.risk_model, indicators\nassert 'backtrader' not in sys.modules\n"
    env_root = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=env_root, timeout=120,
                   env={**__import__("os").environ, "PYTHONPATH": env_root})


@pytest.mark.parametrize("method", ["sample", "ledoit_wolf"])
def test_whole_path_of_a_data_frame_equals_the_online_model_bit_for_bit(method):
    """A DataFrame's values are column-major: the old whole-path code estimated on slices of that
    layout and differed from the online model by ~1e-17; both now run the same estimator."""
    from indicators.risk_model import RiskModel

    rng = np.random.default_rng(7)
    df = pd.DataFrame(rng.standard_normal((80, 4)) * 0.01 + 0.0005, columns=list("abcd"))
    assert np.asarray(df, dtype=float).flags.f_contiguous
    path = rolling_covariance(df, method, sample_window=25)
    model = RiskModel(4, method, sample_window=25)
    for t, row in enumerate(df.to_numpy()):
        model.update(row)
        if model.ready:
            np.testing.assert_array_equal(path[t], model.cov)


def test_make_pd_flags_repairs_and_names_bad_matrices():
    """The per-bar check: a positive definite matrix comes back symmetrized and unflagged, an
    indefinite one repaired and flagged, a non-finite or non-square one is a DataError."""
    from drb.errors import DataError
    from indicators.covariance import make_pd

    a = np.array([[0.04, 0.01 + 1e-12], [0.01, 0.09]])
    out, repaired = make_pd(a)
    assert not repaired and np.array_equal(out, 0.5 * (a + a.T))
    bad = np.array([[0.04, 0.2], [0.2, 0.09]])
    out, repaired = make_pd(bad)
    assert repaired and np.all(np.linalg.eigvalsh(out) > 0)
    for m in (np.array([[np.inf, 0.0], [0.0, 0.04]]), np.array([[np.nan, 0.0], [0.0, 0.04]]), np.ones((2, 3))):
        with pytest.raises(DataError):
            make_pd(m)
