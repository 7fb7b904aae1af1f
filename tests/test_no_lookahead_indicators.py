"""Alter every price after bar t and check that nothing the indicators reported up to t changed."""

import numpy as np
from test_bt_indicators import PRICES, REC, VIX, run

T_CUT = 260


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


def test_no_lookahead():
    p = PRICES.copy()
    rng = np.random.default_rng(99)
    p.iloc[T_CUT + 1 :] *= np.exp(np.cumsum(0.05 * rng.standard_normal((len(p) - T_CUT - 1, 2)), axis=0))
    v = VIX.copy()
    v.iloc[T_CUT + 1 :] = 80.0
    alt = run(p, v)
    for key in ("cov", "scov", "ev", "rid", "vs", "mk", "rc", "src"):
        for t in range(T_CUT + 1):
            assert _same(alt[key][t], REC[key][t]) if key not in ("vs", "src") else alt[key][t] == REC[key][t], (key, t)
    # and the alteration does show up afterwards (the test can fail)
    assert not all(_same(alt["cov"][t], REC["cov"][t]) for t in range(T_CUT + 1, len(p)))
    assert alt["vs"][T_CUT + 1] == "high"
