"""The live feed (feeds.live): growing CSV / Parquet / folder sources, row rules, backtrader delivery."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DataError
from drb.io import atomic_write_text
from feeds.live import BarSource, LiveMarket

ASSETS = ["equity", "bond"]
HEADER = "date,equity,bond,vol_index\n"


def _append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)
        fh.flush()


def _dates(bars) -> list[str]:
    return [b.date.strftime("%Y-%m-%d") for b in bars]


def test_csv_tail_reads_only_complete_lines(tmp_path):
    path = tmp_path / "live.csv"
    src = BarSource(path, ASSETS)
    assert src.poll() == []  # the file does not exist yet: wait
    _append(path, HEADER + "2024-01-02,100,50,20\n2024-01-03,101,50.5")  # second line half-written
    bars = src.poll()
    assert _dates(bars) == ["2024-01-02"]
    assert bars[0].closes == {"equity": 100.0, "bond": 50.0}
    assert bars[0].signals == {"vol_index": 20.0}
    assert bars[0].where.endswith("live.csv:2")
    assert src.poll() == []
    _append(path, ",21\n2024-01-04,102,51,\n")
    bars = src.poll()
    assert _dates(bars) == ["2024-01-03", "2024-01-04"]
    assert bars[0].closes["bond"] == 50.5 and bars[0].signals["vol_index"] == 21.0
    assert np.isnan(bars[1].signals["vol_index"])  # an empty signal cell is NaN, not an error
    assert src.stats.accepted == 3 and src.stats.malformed == 0


def test_duplicate_late_and_malformed_rows_are_logged_and_skipped(tmp_path, caplog):
    path = tmp_path / "live.csv"
    path.write_text(HEADER + "2024-01-02,100,50,20\n2024-01-03,101,50,20\n")
    src = BarSource(path, ASSETS)
    assert len(src.poll()) == 2
    _append(
        path,
        "2024-01-03,999,50,20\n"  # line 4: duplicate
        "2024-01-01,98,50,20\n"  # line 5: late / out of order (never seen, before the last bar)
        "2024-01-05,abc,50,20\n"  # line 6: non-numeric
        "2024-01-05,100\n"  # line 7: wrong number of fields
        "not-a-date,100,50,20\n"  # line 8: unparseable date
        "2024-01-05,-1,50,20\n"  # line 9: negative price
        "2024-01-05,100,,20\n"  # line 10: missing asset value
        "2024-01-05,100,inf,20\n"  # line 11: infinite
        "2024-01-05,100,50,x\n"  # line 12: bad signal
        "2024-01-05,103,51,19\n",  # line 13: good
    )
    with caplog.at_level(logging.WARNING, logger="drb.live"):
        bars = src.poll()
    assert _dates(bars) == ["2024-01-05"] and bars[0].closes["equity"] == 103.0
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 9
    expect = {
        4: "duplicate",
        5: "late",
        6: "malformed",
        7: "malformed",
        8: "malformed",
        9: "malformed",
        10: "malformed",
        11: "malformed",
        12: "malformed",
    }
    for (line, kind), msg in zip(expect.items(), msgs):
        assert f"live.csv:{line}: {kind} row skipped" in msg, msg
    assert src.stats.duplicate == 1 and src.stats.late == 1 and src.stats.malformed == 7
    assert src.stats.accepted == 3
    # the rejected rows are never delivered later either
    assert src.poll() == []


def test_after_skips_the_backlog_silently_then_rejects_late_rows(tmp_path, caplog):
    path = tmp_path / "live.csv"
    path.write_text(HEADER + "".join(f"2024-01-0{d},{100 + d},50,20\n" for d in range(2, 6)))
    src = BarSource(path, ASSETS, after="2024-01-03")
    with caplog.at_level(logging.INFO, logger="drb.live"):
        bars = src.poll()
    assert _dates(bars) == ["2024-01-04", "2024-01-05"]
    assert src.stats.known == 2
    assert [r.levelno for r in caplog.records] == [logging.INFO]  # one summary line, no warnings
    caplog.clear()
    _append(path, "2024-01-03,1,1,1\n")
    with caplog.at_level(logging.WARNING, logger="drb.live"):
        assert src.poll() == []
    assert "live.csv:6: duplicate row skipped" in caplog.records[0].getMessage()


def test_replaced_file_is_reread_without_double_counting(tmp_path):
    path = tmp_path / "live.csv"
    atomic_write_text(path, HEADER + "2024-01-02,100,50,20\n2024-01-03,101,50,20\n")
    src = BarSource(path, ASSETS)
    assert len(src.poll()) == 2
    atomic_write_text(path, HEADER + "2024-01-02,100,50,20\n2024-01-03,101,50,20\n2024-01-04,102,50,20\n")
    assert _dates(src.poll()) == ["2024-01-04"]
    assert src.stats.duplicate == 0 and src.stats.accepted == 3


def test_missing_asset_column_is_a_data_error(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("date,equity,vol_index\n2024-01-02,100,20\n")
    with pytest.raises(DataError, match="no column for asset 'bond'"):
        BarSource(path, ASSETS).poll()


def test_growing_parquet_file(tmp_path):
    path = tmp_path / "live.parquet"
    idx = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=5), name="date")
    frame = pd.DataFrame({"equity": np.arange(100.0, 105.0), "bond": 50.0, "vol_index": 20.0}, index=idx)
    frame.iloc[:2].to_parquet(path)
    src = BarSource(path, ASSETS)
    assert _dates(src.poll()) == ["2024-01-02", "2024-01-03"]
    assert src.poll() == []
    bad = frame.iloc[:5].copy()
    bad.iloc[3, 0] = -1.0  # row 4: negative
    tmp = tmp_path / ".live.parquet.tmp"
    bad.to_parquet(tmp)
    os.replace(tmp, path)
    bars = src.poll()
    assert _dates(bars) == ["2024-01-04", "2024-01-08"]
    assert src.stats.malformed == 1


def test_folder_of_daily_files(tmp_path, caplog):
    folder = tmp_path / "daily"
    folder.mkdir()
    src = BarSource(folder, ASSETS)
    (folder / "2024-01-02.csv").write_text(HEADER + "2024-01-02,100,50,20\n")
    (folder / "2024-01-03.csv.tmp").write_text(HEADER + "2024-01-03,101,50,20\n")  # not renamed yet
    (folder / "2024-01-04.csv").write_text(HEADER + "2024-01-04,102,50,20")  # no final newline yet
    assert _dates(src.poll()) == ["2024-01-02"]
    os.replace(folder / "2024-01-03.csv.tmp", folder / "2024-01-03.csv")
    _append(folder / "2024-01-04.csv", "\n")
    assert _dates(src.poll()) == ["2024-01-03", "2024-01-04"]
    day = pd.DataFrame({"date": [pd.Timestamp("2024-01-05")], "equity": [103.0], "bond": [51.0], "vol_index": [19.0]})
    day.to_parquet(folder / "2024-01-05.parquet")
    (folder / "2024-01-01.csv").write_text(HEADER + "2024-01-01,99,50,20\n")  # arrives late
    (folder / "2024-01-08.csv").write_text("date,equity\n2024-01-08,104\n")  # bad header: skipped
    with caplog.at_level(logging.WARNING, logger="drb.live"):
        assert _dates(src.poll()) == ["2024-01-05"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "2024-01-01.csv:2: late row skipped" in text
    assert "2024-01-08.csv: file skipped: no column for asset 'bond'" in text
    assert src.poll() == []


def test_live_market_validates_options(tmp_path):
    with pytest.raises(ConfigError):
        LiveMarket(tmp_path / "x.csv", ASSETS, poll_interval=0)
    with pytest.raises(ConfigError):
        LiveMarket(tmp_path / "x.csv", ASSETS, max_bars=-1)


# ------------------------------------------------------------------------------ backtrader
class _Recorder(bt.Strategy):
    params = (("stop_at", None), ("market", None))

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def next(self) -> None:
        self.rows.append(
            (
                self.datas[0].datetime.date(0),
                tuple(len(d) for d in self.datas),
                tuple(d.datetime.date(0) for d in self.datas),
                tuple(float(d.open[0]) for d in self.datas),
                tuple(float(d.close[0]) for d in self.datas),
            )
        )
        if self.p.stop_at is not None and len(self.rows) == self.p.stop_at:
            self.p.market.request_stop("test")


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2024-01-02", periods=n)
    levels = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
    frame = pd.DataFrame(levels.round(6), index=idx, columns=ASSETS)
    frame["vol_index"] = np.round(20 + rng.normal(0, 1, n), 4)
    return frame


def _write_rows(path: Path, frame: pd.DataFrame, delay: float) -> threading.Thread:
    def run() -> None:
        with open(path, "a") as fh:
            if fh.tell() == 0:
                fh.write("date," + ",".join(frame.columns) + "\n")
            for d, row in zip(frame.index, frame.to_numpy()):
                fh.write(f"{d:%Y-%m-%d}," + ",".join(repr(float(x)) for x in row) + "\n")
                fh.flush()
                time.sleep(delay)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_feeds_advance_together_and_stop_finishes_the_current_bar(tmp_path):
    frame = _frame(30)
    path = tmp_path / "live.csv"
    market = LiveMarket(path, ASSETS, poll_interval=0.01, last_closes={"equity": 99.0, "bond": 49.0})
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    names = market.add_to(cerebro)
    assert names == ["equity", "bond", "vol_index"]
    assert all(feed.islive() for _, feed in market.make_feeds())
    cerebro.addstrategy(_Recorder, stop_at=12, market=market)
    writer = _write_rows(path, frame, 0.002)
    t0 = time.monotonic()
    strat = cerebro.run()[0]
    writer.join()
    assert time.monotonic() - t0 < 20
    assert len(strat.rows) == 12 and market.bars_delivered == 12
    for i, (date, lens, dates, opens, closes) in enumerate(strat.rows):
        assert lens == (i + 1,) * 3  # every feed got every bar
        assert len(set(dates)) == 1 and date == frame.index[i].date()
        assert closes == tuple(frame.iloc[i][["equity", "bond", "vol_index"]])
        prev = (99.0, 49.0) if i == 0 else tuple(frame.iloc[i - 1][ASSETS])
        assert opens[:2] == prev  # open = previous close (the history's last close first)
    assert market.stop_reason == "test"


def _stop_after_idle_polls(market: LiveMarket, bars: int, polls: int = 3) -> None:
    """Request a stop once ``bars`` bars were delivered and the source was polled ``polls`` more times."""
    deadline = time.monotonic() + 60
    while market.bars_delivered < bars and time.monotonic() < deadline:
        time.sleep(0.005)
    seen = market.source.stats.polls
    while market.source.stats.polls < seen + polls and time.monotonic() < deadline:
        time.sleep(0.005)
    market.request_stop("idle")


def test_stop_reason_is_decided_by_the_bars_delivered_not_queued(tmp_path):
    """Every row up to --until is queued at the first poll; a stop requested at the 5th bar is the
    reason, not the --until limit whose bar was queued but never delivered."""
    frame = _frame(20)
    path = tmp_path / "live.csv"
    _write_rows(path, frame, 0.0).join()
    for kwargs in ({"until": frame.index[-1]}, {"max_bars": 15}):
        market = LiveMarket(path, ASSETS, poll_interval=0.01, **kwargs)
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
        market.add_to(cerebro)
        cerebro.addstrategy(_Recorder, stop_at=5, market=market)
        strat = cerebro.run()[0]
        assert len(strat.rows) == 5 and market.bars_delivered == 5
        assert market.stop_reason == "test", kwargs
    # a stop requested while the last bar is being delivered: the limit was reached
    market = LiveMarket(path, ASSETS, poll_interval=0.01, until=frame.index[9])
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    market.add_to(cerebro)
    cerebro.addstrategy(_Recorder, stop_at=10, market=market)
    assert len(cerebro.run()[0].rows) == 10
    assert market.stop_reason == f"reached --until {frame.index[9].date()}"


def test_max_bars_and_until_end_the_run(tmp_path):
    frame = _frame(20)
    path = tmp_path / "live.csv"
    _write_rows(path, frame, 0.0).join()
    for kwargs, n in (({"max_bars": 7}, 7), ({"until": frame.index[9]}, 10), ({"after": frame.index[14]}, None)):
        market = LiveMarket(path, ASSETS, poll_interval=0.01, **kwargs)
        if n is None:  # nothing after the last row: wait (polling), then stop
            threading.Thread(target=_stop_after_idle_polls, args=(market, 5), daemon=True).start()
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
        market.add_to(cerebro)
        cerebro.addstrategy(_Recorder)
        strat = cerebro.run()[0]
        dates = [r[0] for r in strat.rows]
        if n is None:
            assert dates == [d.date() for d in frame.index[15:]]
        else:
            assert dates == [d.date() for d in frame.index[:n]]


def test_live_run_equals_the_backtest_on_the_same_bars(tmp_path):
    """EqualWeight through the live feed (rows arriving while it runs) = the PandasData backtest."""
    from feeds.market import MarketData
    from feeds.synthetic import synthetic_market
    from runners.engine.cerebro import build_cerebro
    from strategies.bt.strategies import STRATEGIES

    m = synthetic_market(seed=2, start="2022-01-03", end="2022-09-30")
    table = m.prices.round(6)
    table["vol_index"] = m.vol_index.round(4)
    market = MarketData(
        prices=table[list(m.prices.columns)], asset_classes={a: a for a in m.prices.columns}, vol_index=table["vol_index"]
    )
    params = {"warmup": 40, "rebalance": "weekly"}
    ref = build_cerebro(market, STRATEGIES["EqualWeight"], params, analyzers=False)
    ref_strat = ref.run()[0]

    path = tmp_path / "live.csv"
    live = LiveMarket(path, market.assets, poll_interval=0.01, until=table.index[-1])
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    live.add_to(cerebro)
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.setcommission(commission=0.0005)
    cerebro.addstrategy(STRATEGIES["EqualWeight"], asset_classes=market.asset_classes, **params)
    writer = _write_rows(path, table, 0.001)
    strat = cerebro.run()[0]
    writer.join()
    assert len(strat.fills) == len(ref_strat.fills) > 10
    assert cerebro.broker.getcash() == ref.broker.getcash()
    assert cerebro.broker.getvalue() == ref.broker.getvalue()
    for a, b in zip(strat.fills, ref_strat.fills):
        assert a == b


class _TouchesPositions(_Recorder):
    """Creates every feed's broker position before the first bar (as a resumed paper run does)."""

    def start(self) -> None:
        for d in self.datas:
            self.broker.getposition(d)


def test_waiting_for_the_first_bar_does_not_run_the_broker_on_empty_feeds(tmp_path):
    """Before the first bar, cerebro must not loop on empty feeds (its broker would read close[0]
    of feeds without a bar); the feed waits, polling, until a bar arrives or a stop."""
    frame = _frame(6)
    path = tmp_path / "later" / "live.csv"  # neither the file nor its folder exist yet
    market = LiveMarket(path, ASSETS, poll_interval=0.01, max_bars=6)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    market.add_to(cerebro)
    cerebro.addstrategy(_TouchesPositions)

    def later() -> None:
        deadline = time.monotonic() + 60
        while market.source.stats.polls <= 10 and time.monotonic() < deadline:
            time.sleep(0.005)  # the run is waiting, polling
        path.parent.mkdir()
        _write_rows(path, frame, 0.002).join()

    th = threading.Thread(target=later, daemon=True)
    th.start()
    strat = cerebro.run()[0]
    th.join()
    assert [r[0] for r in strat.rows] == [d.date() for d in frame.index]
    assert market.source.stats.polls > 10  # it did wait, polling
    # a stop while waiting for the first bar ends the run at once, without a bar
    market = LiveMarket(tmp_path / "never.csv", ASSETS, poll_interval=0.01)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    market.add_to(cerebro)
    cerebro.addstrategy(_TouchesPositions)
    threading.Timer(0.3, market.request_stop).start()
    t0 = time.monotonic()
    assert cerebro.run()[0].rows == []
    assert time.monotonic() - t0 < 5


def test_backlog_rows_after_the_processed_bar_are_still_checked(tmp_path, caplog):
    """Only backlog rows dated on or before ``after`` are skipped silently: a duplicate or an
    out-of-order row among the new rows of the backlog is logged like any other."""
    path = tmp_path / "live.csv"
    path.write_text(
        "date,equity,bond\n"  # no vol_index column: said once
        "2024-01-02,100,50\n2024-01-03,101,50\n"  # lines 2-3: processed by a previous run
        "2024-01-04,102,50\n2024-01-04,102,50\n"  # lines 4-5: new, then its duplicate
        "2024-01-03,101,50\n"  # line 6: a processed bar again (its duplicate was logged back then)
        "2024-01-08,103,50\n2024-01-05,104,50\n"  # lines 7-8: new, then out of order
    )
    src = BarSource(path, ASSETS, after="2024-01-03")
    with caplog.at_level(logging.INFO, logger="drb.live"):
        bars = src.poll()
    assert _dates(bars) == ["2024-01-04", "2024-01-08"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    assert "no 'vol_index' column" in warnings[0]
    assert "live.csv:5: duplicate row skipped" in warnings[1]
    assert "live.csv:8: late row skipped" in warnings[2]
    assert src.stats.known == 3 and src.stats.duplicate == 1 and src.stats.late == 1
    assert np.isnan(bars[0].signals["vol_index"])


def test_future_rows_are_skipped_not_traded(tmp_path, caplog):
    """A row dated years ahead (a typo) or after today is skipped with a log line; the real rows
    after it are accepted (not rejected as late for ever)."""
    path = tmp_path / "live.csv"
    path.write_text(
        HEADER + "2024-01-02,100,50,20\n"
        "2030-01-03,101,50,20\n"  # line 3: typo for 2024-01-03
        "2024-01-03,101,50,20\n2024-01-04,102,50,20\n"
        "2024-01-22,103,50,20\n"  # line 6: 18 days after the last bar
        "2024-01-05,103,50,20\n"  # line 7: today is 2024-01-08 ...
        "2024-01-09,104,50,20\n"  # line 8: ... so this one is after today
    )
    src = BarSource(path, ASSETS, today=lambda: pd.Timestamp("2024-01-08"))
    with caplog.at_level(logging.WARNING, logger="drb.live"):
        bars = src.poll()
    assert _dates(bars) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    msgs = [r.getMessage() for r in caplog.records]
    assert any("live.csv:3: future row skipped: 2030-01-03 is 2193 days after the last bar 2024-01-02 (more than --max-gap-days 10)" in m for m in msgs), msgs
    assert any("live.csv:6: future row skipped: 2024-01-22 is 18 days after" in m for m in msgs), msgs
    assert any("live.csv:8: future row skipped: 2024-01-09 is after today 2024-01-08" in m for m in msgs), msgs
    assert src.stats.future == 3 and src.stats.late == 0
    wide = BarSource(path, ASSETS, max_gap_days=30, today=lambda: pd.Timestamp("2024-12-31"))
    assert _dates(wide.poll()) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-22"]
    with pytest.raises(ConfigError, match="--max-gap-days must be > 0"):
        BarSource(path, ASSETS, max_gap_days=0)


def test_a_file_that_is_not_a_csv_is_never_quoted(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(DataError) as err:
        BarSource(path, ASSETS).poll()
    assert "not a CSV with a 'date' column" in str(err.value)
    assert "root" not in str(err.value).replace(str(tmp_path), "")


def test_zoned_rows_keep_their_local_date(tmp_path):
    """A close stamped 20:00 in New York is that day's bar (as the loaders date it), not the next."""
    path = tmp_path / "live.csv"
    path.write_text(HEADER + "2024-01-02T20:00:00-05:00,100,50,20\n2024-01-03T16:00:00-05:00,101,50,20\n")
    assert _dates(BarSource(path, ASSETS).poll()) == ["2024-01-02", "2024-01-03"]
