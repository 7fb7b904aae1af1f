import warnings

import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError, SignalFallbackWarning
from indicators.regimes import (
    PHASES,
    REGIMES,
    CycleClassifier,
    VolatilityStateClassifier,
    classify_cycle,
    classify_volatility_state,
    composite_leading_indicator,
    daily_cycle_phase,
    regime_id,
)

MONTHS = pd.date_range("2010-01-01", periods=120, freq="MS")
GAP = np.sin(2 * np.pi * np.arange(120) / 36)
RNG = np.random.default_rng(0)
MACRO = pd.DataFrame(GAP[:, None] * RNG.uniform(0.5, 1.5, 8) + 0.2 * RNG.standard_normal((120, 8)), index=MONTHS)
DAYS = pd.bdate_range("2013-01-01", "2019-12-31")
EQ = pd.Series(100 * np.exp(np.cumsum(0.0003 + 0.01 * RNG.standard_normal(len(DAYS)))), index=DAYS)


def test_labels():
    assert len(REGIMES) == 12 and REGIMES[regime_id("recession", "high")] == "recession/high"
    assert regime_id("recovery", "low") == 0 and regime_id("expansion", "medium") == 4


def test_cli_timing_sign_and_causality():
    cli = composite_leading_indicator(MACRO, publication_lag=1)
    # reference month m usable from the first day of m + 2
    assert cli.index[0] == MONTHS[11] + pd.DateOffset(months=2)
    assert np.corrcoef(cli.to_numpy(), GAP[11:])[0, 1] > 0.9  # higher = stronger growth
    cut = composite_leading_indicator(MACRO.iloc[:60], publication_lag=1)
    pd.testing.assert_series_equal(cli.iloc[: len(cut)], cut)


def test_classify_cycle_quadrants():
    cli = pd.Series([0.5, 0.2, -0.3, -0.6, -0.4, -0.1, 0.3, 0.6, 0.4, 0.1])
    ph = classify_cycle(cli, k=1, trend_window=None)  # trend = expanding mean
    assert ph.iloc[0] is None
    assert ph.iloc[3] == "recession" and ph.iloc[4] == "recovery"
    assert ph.iloc[7] == "expansion" and ph.iloc[8] == "deceleration"
    true = pd.Series(np.array(PHASES)[np.select([(GAP < 0) & (np.gradient(GAP) > 0), (GAP >= 0) & (np.gradient(GAP) > 0), GAP >= 0], [0, 1, 2], 3)], index=MONTHS)
    est = classify_cycle(composite_leading_indicator(MACRO, publication_lag=0), k=3)
    est.index = MONTHS[11:]
    assert (est.iloc[12:] == true.iloc[23:]).mean() > 0.5


def test_online_cycle_equals_vectorized_and_fallback():
    vec = daily_cycle_phase(DAYS, macro=MACRO.iloc[50:], equity_prices=EQ)
    clf = CycleClassifier()
    for ref, row in MACRO.iloc[50:].iterrows():
        clf.add_macro(ref, row.to_numpy())
    got, src = [], []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for d, p in EQ.items():
            if d == DAYS[700]:
                clf = CycleClassifier.from_state(clf.get_state())
            got.append(clf.update(d, p))
            src.append(clf.source)
    assert got == vec.phase.tolist() and src == vec.source.tolist()
    assert {"price_proxy", "macro"} <= set(src)  # macro starts in 2013 only after min_periods
    assert any(issubclass(w.category, SignalFallbackWarning) for w in rec)


def test_volatility_state():
    v = pd.Series(np.r_[np.arange(30.0), [0.0, 100.0, 15.0, np.nan]])
    s = classify_volatility_state(v, lookback=30, min_periods=30)
    assert s.iloc[28] is None and s.iloc[29] == "high"
    assert s.iloc[30] == "low" and s.iloc[31] == "high" and s.iloc[32] == "medium" and s.iloc[33] == "medium"
    t = classify_volatility_state(v, method=(10.0, 20.0))
    assert t.iloc[5] == "low" and t.iloc[15] == "medium" and t.iloc[25] == "high"
    clf = VolatilityStateClassifier(30, min_periods=30)
    out = []
    for i, x in enumerate(v):
        if i == 31:
            clf = VolatilityStateClassifier.from_state(clf.get_state())
        out.append(clf.update(x))
    assert out == s.tolist()
    with pytest.raises(DataError):
        VolatilityStateClassifier(method=(3.0, 1.0))



class _PlainCycle(CycleClassifier):
    """The straightforward version: the whole history converted at every month."""

    def _mirror(self, attr, rows, last):
        return np.asarray(rows)


def test_online_cli_values_bit_identical_to_plain_across_drop_and_state():
    # The online classifier keeps float mirrors of its history instead of converting the lists
    # at every month; its CLI values must be exactly those of the plain conversion, also after a
    # stale series is dropped (history rebuilt) and after state round trips (mirrors rebuilt).
    m = MACRO.copy()
    m.iloc[70:, 2] = np.nan  # series 2 stops: dropped once stale, the CLI recomputed without it
    fast, plain = CycleClassifier(), _PlainCycle()
    for ref, row in m.iterrows():
        fast.add_macro(ref, row.to_numpy())
        plain.add_macro(ref, row.to_numpy())
    days = pd.bdate_range("2010-06-01", "2019-12-31")
    n_cli = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, d in enumerate(days):
            if i in (400, 401, 1500):
                fast = CycleClassifier.from_state(fast.get_state())
            assert fast.update(d) == plain.update(d)
            assert fast._cli == plain._cli  # exact, not approximately
            n_cli.append(len(fast._cli))
    assert list(fast.dropped) == ["x2"] and max(n_cli) > 100
    from indicators.regimes import _MIRRORS

    assert _MIRRORS[fast]["_xa"][0].shape[1] == 7  # the mirror was rebuilt without the series
    assert not any(isinstance(v, np.ndarray) or k.startswith("_xa") for k, v in vars(fast).items())  # not state


def test_standardize_last_bit_identical_to_numpy_mean_std():
    from indicators.regimes import _standardize_last

    rng = np.random.default_rng(7)
    for t in range(300):
        m, k = int(rng.integers(2, 200)), int(rng.integers(1, 9))
        x = rng.standard_normal((m, k)) * 10 ** rng.uniform(-3, 3, k) + rng.uniform(-50, 50, k)
        if t % 5 == 0:
            x[:, 0] = 1.7  # a flat series: its deviation is 0, scaled by 1
        sd = x.std(axis=0, ddof=1)
        ref = (x[-1] - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        assert np.array_equal(_standardize_last(x), ref)
