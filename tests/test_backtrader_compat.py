"""backtrader 1.9.78 with this project's pandas/numpy: dates, prices, fractional sizes, cheat-on-open."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from feeds.bt_feeds import price_frame


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_pandas_feed_dates_and_prices_exact(unit):
    idx = pd.DatetimeIndex(pd.bdate_range("2020-01-01", periods=30)).as_unit(unit)
    close = pd.Series(np.linspace(100.0, 130.0, 30), index=idx)
    seen = []

    class Probe(bt.Strategy):
        def next(self):
            seen.append((pd.Timestamp(self.data.datetime.date(0)), self.data.close[0], self.data.open[0]))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=price_frame(close)), name="equity")
    cerebro.addstrategy(Probe)
    cerebro.run()
    dates = [d for d, _, _ in seen]
    assert dates == list(idx.as_unit("ns"))
    np.testing.assert_array_equal([c for _, c, _ in seen], close.to_numpy())
    np.testing.assert_array_equal([o for _, _, o in seen][1:], close.to_numpy()[:-1])


def test_fractional_sizes_fill_at_next_open_with_cheat_on_open():
    idx = pd.bdate_range("2020-01-01", periods=5)
    close = pd.Series([100.0, 101.0, 102.0, 103.0, 104.0], index=idx)
    fills = []

    class Buyer(bt.Strategy):
        def next_open(self):
            if len(self) == 2:
                self.buy(size=1.2345)

        def notify_order(self, order):
            if order.status == order.Completed:
                fills.append((order.executed.size, order.executed.price, order.executed.comm))

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.adddata(bt.feeds.PandasData(dataname=price_frame(close)), name="equity")
    cerebro.broker.setcash(1000.0)
    cerebro.broker.setcommission(commission=0.0005)
    cerebro.addstrategy(Buyer)
    cerebro.run()
    size, price, comm = fills[0]
    assert size == pytest.approx(1.2345)
    assert price == 101.0  # open of bar 2 = close of bar 1
    assert comm == pytest.approx(1.2345 * 101.0 * 0.0005)
