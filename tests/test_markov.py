import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError
from indicators.markov import (
    MarkovTransitionEstimator,
    expanding_transition_matrix,
    expanding_transition_rows,
    transition_matrix,
)
from indicators.regimes import REGIMES

SEQ = ["a", "a", "b", "a", "b", "b", None, "b", "a"]


def test_counts_and_uniform_rows():
    p = transition_matrix(SEQ, labels=["a", "b", "c"])
    # a->a 1, a->b 2 ; b->a 2, b->b 1 ; None breaks b->None->b
    np.testing.assert_allclose(p.loc["a"], [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(p.loc["b"], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(p.loc["c"], [1 / 3] * 3)
    ps = transition_matrix(SEQ, labels=["a", "b", "c"], smoothing=1.0)
    np.testing.assert_allclose(ps.loc["a"], [2 / 6, 3 / 6, 1 / 6])
    with pytest.raises(DataError):
        transition_matrix(["a", "z"], labels=["a"])


def test_expanding_online_and_state():
    exp = expanding_transition_matrix(SEQ, ["a", "b", "c"])
    np.testing.assert_allclose(exp[-1], transition_matrix(SEQ, ["a", "b", "c"]).to_numpy())
    np.testing.assert_allclose(exp[2], transition_matrix(SEQ[:3], ["a", "b", "c"]).to_numpy())
    est = MarkovTransitionEstimator(["a", "b", "c"])
    for t, s in enumerate(SEQ):
        est.update(s)
        np.testing.assert_allclose(est.matrix.to_numpy(), exp[t])
        if t == 4:
            est = MarkovTransitionEstimator.from_state(est.get_state())
    np.testing.assert_allclose(est.row("a").to_numpy(), exp[-1][0])
    rows = expanding_transition_rows(pd.Series(SEQ), ["a", "b", "c"])
    assert rows.iloc[6].isna().all()
    np.testing.assert_allclose(rows.iloc[-1], exp[-1][0])


def test_regime_labels_default():
    est = MarkovTransitionEstimator()
    est.update(REGIMES[0])
    est.update(REGIMES[5])
    assert est.row(REGIMES[0])[REGIMES[5]] == 1.0 and est.matrix.shape == (12, 12)
