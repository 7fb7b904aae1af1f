import backtrader as bt
import numpy as np
import pandas as pd
from test_egarch import simulate_egarch

from indicators import REGIMES
from indicators.bt_indicators import (
    EGARCHVolatility,
    MarkovTransition,
    RegimeState,
    RiskContribution,
    RiskModelIndicator,
)
from indicators.regimes import classify_volatility_state
from indicators.risk_model import rolling_risk_model
from indicators.triggers import relative_risk_contribution

DAYS = pd.bdate_range("2020-01-01", periods=320)
RET = np.column_stack([simulate_egarch(319, s, alpha=0.25, beta=0.95) for s in (31, 32)])
PRICES = pd.DataFrame(100 * np.vstack([np.ones(2), np.cumprod(1 + RET, axis=0)]), index=DAYS, columns=["a", "b"])
VIX = pd.Series(15 + 5 * np.sin(np.arange(320) / 9.0), index=DAYS)


def feed(s):
    df = pd.DataFrame({c: s for c in ("open", "high", "low", "close")})
    df["volume"] = 0.0
    return bt.feeds.PandasData(dataname=df)


def run(prices=PRICES, vix=VIX, **kw):
    rec = {}

    class S(bt.Strategy):
        def __init__(self):
            self.rm = RiskModelIndicator(self.datas[0], self.datas[1], method="egarch_dcc", min_window=200, window=300, refit_every=40)
            self.sm = RiskModelIndicator(self.datas[0], self.datas[1], method="sample")
            self.ev = EGARCHVolatility(self.datas[0], min_window=200, window=300, refit_every=40)
            self.rs = RegimeState(self.datas[0], self.datas[2], macro=None, min_periods=60, lookback=120)
            self.mk = MarkovTransition(self.rs)
            self.rc = RiskContribution(self.datas[0], self.datas[1], weights=[0.7, 0.3], method="sample")
            for k in ("cov", "scov", "ev", "rid", "vs", "mk", "rc", "src"):
                rec[k] = []

        def next(self):
            rec["cov"].append(None if self.rm.cov is None else self.rm.cov.copy())
            rec["scov"].append(None if self.sm.cov is None else self.sm.cov.copy())
            rec["ev"].append(self.ev.vol[0])
            rec["rid"].append(self.rs.regime[0])
            rec["vs"].append(self.rs.vol_label)
            rec["mk"].append([getattr(self.mk.lines, f"p{i}")[0] for i in range(12)])
            rec["rc"].append([self.rc.rc0[0], self.rc.rc1[0]])
            rec["src"].append((self.rs.cycle_source, self.rs.vol_source))

    cer = bt.Cerebro(stdstats=False)
    for c in prices.columns:
        cer.adddata(feed(prices[c]), name=c)
    cer.adddata(feed(vix), name="vix")
    cer.addstrategy(S)
    cer.run(runonce=False)
    return rec


REC = run()


def test_risk_model_indicator_equals_pure_path():
    ret = PRICES.pct_change()
    ref = rolling_risk_model(ret, min_window=200, window=300, refit_every=40)["cov"]
    refs = rolling_risk_model(ret, "sample")["cov"]
    for t in range(320):
        got = REC["cov"][t]
        assert (got is None and np.isnan(ref[t]).all()) or np.array_equal(got, ref[t])
        gs = REC["scov"][t]
        assert (gs is None and np.isnan(refs[t]).all()) or np.array_equal(gs, refs[t])
    ev = np.array(REC["ev"])
    np.testing.assert_array_equal(np.isnan(ev), np.isnan(ref[:, 0, 0]))
    assert np.all(np.isfinite(ev[201:])) and np.all(ev[201:] > 0)
    t = 250
    np.testing.assert_allclose(REC["rc"][t], relative_risk_contribution([0.7, 0.3], refs[t]))


def test_regime_state_and_markov_lines():
    vs = classify_volatility_state(VIX, lookback=120, min_periods=60)
    assert REC["vs"] == vs.tolist()
    assert REC["src"][-1] == (None, "vol_index")  # 320 bars: too short for the price proxy
    rid = np.array(REC["rid"])
    assert np.isnan(rid).all()  # no phase yet -> no regime
    assert np.isnan(np.array(REC["mk"])).all()
    assert len(REGIMES) == 12
