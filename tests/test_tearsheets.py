"""pyfolio tear sheets: inputs for every asset, rendering in worker processes, a clean console."""

from __future__ import annotations

import pandas as pd
import pytest
from _fake_run import ASSETS, write_fake_run

from drb.errors import DataError
from runners.report.tearsheets import load_tearsheet_inputs, write_tearsheets

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    # short series: a tear sheet needs ~6 months for its rolling panels; 140 days keeps it fast
    return write_fake_run(tmp_path_factory.mktemp("ts"), n_days=140,
                          strategies=("DynamicRiskBudget", "EqualWeight"))


def test_inputs_hold_every_asset_and_cash(short_run):
    rets, pos, txns = load_tearsheet_inputs(short_run, "DynamicRiskBudget")
    assert list(pos.columns) == [*ASSETS, "cash"]
    assert pos.index.equals(rets.index) and str(rets.index.tz) == "UTC"
    assert set(txns["symbol"]) == set(ASSETS)  # not only the last feed
    assert str(txns.index.tz) == "UTC"
    # positions are money values: they add up to the portfolio value
    values = pd.read_csv(short_run / "values.csv", index_col="date", parse_dates=True)["DynamicRiskBudget"]
    assert pos.sum(axis=1).to_numpy() == pytest.approx(values.dropna().to_numpy(), rel=1e-9)


def test_inputs_errors(short_run, tmp_path):
    with pytest.raises(DataError, match="no column 'Nope'"):
        load_tearsheet_inputs(short_run, "Nope")
    bad = tmp_path / "bad"
    write_fake_run(bad, n_days=30, strategies=("DynamicRiskBudget",), with_metrics=False)
    (bad / "positions" / "DynamicRiskBudget.csv").unlink()
    with pytest.raises(DataError, match="positions"):
        load_tearsheet_inputs(bad, "DynamicRiskBudget")


@pytest.mark.slow  # worker subprocesses import pyfolio and render
def test_parallel_tearsheets_leave_the_console_clean(short_run, capfd):
    timings: dict[str, float] = {}
    done: list[str] = []
    paths = write_tearsheets(short_run, n_jobs=2, timings=timings, benchmark="EqualWeight",
                             on_done=done.append)
    assert sorted(done) == ["DynamicRiskBudget", "EqualWeight"]  # one progress call each
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no pyfolio HTML reprs, no deprecation warnings
    assert list(paths) == ["DynamicRiskBudget", "EqualWeight"]
    for name, p in paths.items():
        assert p == short_run / "tearsheets" / f"{name}.png"
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 100_000
        from PIL import Image

        with Image.open(p) as im:
            assert im.height > 4 * im.width  # one tall sheet: header, returns, positions, txns
        assert timings[name] > 0


@pytest.mark.slow  # worker subprocesses import pyfolio and render
def test_worker_errors_come_back_typed_and_quiet(tmp_path, capfd):
    run = write_fake_run(tmp_path / "run", n_days=140, strategies=("DynamicRiskBudget",), with_metrics=False)
    txn = run / "transactions" / "DynamicRiskBudget.csv"
    pd.read_csv(txn).drop(columns=["price"]).to_csv(txn, index=False)
    with pytest.raises(DataError, match="price"):
        write_tearsheets(run, n_jobs=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert not (run / "tearsheets" / "DynamicRiskBudget.png").exists()


@pytest.mark.slow  # worker subprocesses import pyfolio and render
def test_workers_started_ahead_render_and_are_all_shut_down(short_run, tmp_path, capfd):
    from runners.report.tearsheets import TearsheetWorkers

    with pytest.raises(ValueError, match="n_jobs"):
        TearsheetWorkers(0)
    workers = TearsheetWorkers(2)
    procs = [proc for proc, _ in workers._procs]
    paths = write_tearsheets(short_run, ["EqualWeight"], out_dir=tmp_path, workers=workers)
    assert paths["EqualWeight"].read_bytes().startswith(PNG)
    # the one worker beyond the strategies and the one that rendered have both exited
    assert len(workers) == 0 and all(p.poll() is not None for p in procs)
    unused = TearsheetWorkers(1)
    proc = unused._procs[0][0]
    unused.close()
    assert proc.poll() is not None and len(unused) == 0
    assert capfd.readouterr() == ("", "")


def test_unknown_benchmark_is_a_data_error(short_run):
    with pytest.raises(DataError, match="benchmark 'Nope'"):
        write_tearsheets(short_run, ["EqualWeight"], benchmark="Nope")


def test_monthly_table_leaves_months_outside_the_run_blank():
    from runners.report.tearsheets import _monthly_table

    idx = pd.DatetimeIndex(["2023-11-29", "2023-11-30", "2024-01-02"], tz="UTC")
    t = _monthly_table(pd.Series([0.01, 0.02, -0.03], index=idx))
    assert list(t.columns) == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert t.loc[2023, "Nov"] == pytest.approx(1.01 * 1.02 - 1)
    assert t.loc[2024, "Jan"] == pytest.approx(-0.03)
    assert t.isna().sum().sum() == 24 - 2  # pyfolio would print 0.0 in all of them


def test_covid_is_the_crash_not_everything_since_2020():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from runners.report.tearsheets import _stress_periods

        periods = _stress_periods()
    assert "Covid" not in periods
    assert periods["Covid crash"] == (pd.Timestamp("2020-02-11", tz="UTC"), pd.Timestamp("2020-04-30", tz="UTC"))
    assert "GFC Crash" in periods


def test_pyfolio_panels_are_relabelled_readably(short_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from runners.report.tearsheets import _quiet, _tidy_axes, _txn_figure

    rets, pos, txns = load_tearsheet_inputs(short_run, "DynamicRiskBudget")
    with _quiet(), pd.plotting.plot_params.use("x_compat", True):
        import pyfolio as pf

        fig = pf.create_returns_tear_sheet(rets, positions=pos, transactions=txns, return_fig=True)
        _tidy_axes(fig, rets)
        fig.canvas.draw()
        axes = {ax.get_title(): ax for ax in fig.axes}
        for title in ("Underwater plot", "Returns", "Rolling volatility (6-month)"):
            labels = [t.get_text() for t in axes[title].get_yticklabels() if t.get_text()]
            assert labels and all(lab.endswith("%") for lab in labels), title
            assert len(set(labels)) == len(labels), (title, labels)  # no "-0%, -0%, -1%, -1%"
        log_ax = axes["Cumulative returns on logarithmic scale"]
        assert not any(t.get_text() for t in log_ax.get_yticklabels(minor=True))  # no "1.3 x 10^0"
        heat = axes["Monthly returns\n(values at the top)"]
        assert heat.images and not heat.texts  # colours only; the header has the numbers
        # legends sit above their panels, never on the data; the mean of the bar charts is
        # in their titles
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is not None:
                assert leg.get_window_extent().y0 >= ax.get_window_extent().y1 - 1, ax.get_title()
        annual = next(ax for ax in fig.axes if ax.get_title().startswith("Annual returns"))
        assert annual.get_legend() is None and "mean" in annual.get_title()
        plt.close(fig)

        fig = _txn_figure(rets, pos, txns)
        fig.canvas.draw()
        ax_turnover = next(ax for ax in fig.axes if ax.get_title().startswith("Daily turnover"))
        turnover = pf.txn.get_turnover(pos, txns, "AGB")
        later = turnover.iloc[1:]
        # scaled to the rebalances, not pyfolio's fixed 0-2 that the initial investment fills
        assert ax_turnover.get_ylim()[1] == pytest.approx(1.15 * later[later > 0].max())
        assert "off the scale" in ax_turnover.get_title()
        hist = next(ax for ax in fig.axes if ax.get_title().startswith("Distribution of daily turnover"))
        n_days = int((later > 0).sum())
        assert f"the {n_days} days with trades" in hist.get_title()
        assert sum(p.get_height() for p in hist.patches) == n_days
        plt.close(fig)


def test_rolling_beta_matches_pyfolio():
    import numpy as np
    import pyfolio.timeseries as pft

    from runners.report.tearsheets import rolling_beta

    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2020-01-01", periods=330, tz="UTC")
    factor = pd.Series(rng.normal(0.0, 0.01, len(idx)), idx, name="EqualWeight")
    rets = 0.6 * factor + pd.Series(rng.normal(0.0, 0.004, len(idx)), idx)
    factor.iloc[150:300] = 0.0  # windows without factor variance: NaN in both
    for window in (63, 126):
        ours = rolling_beta(rets, factor, window)
        pd.testing.assert_series_equal(ours, pft.rolling_beta(rets, factor, window), rtol=1e-9,
                                       check_names=False)
        assert ours.iloc[window:].notna().any() and ours.iloc[:window].isna().all()


def test_long_runs_keep_year_labels_apart_and_legends_off_the_bars():
    import matplotlib

    matplotlib.use("Agg")
    import empyrical as ep
    import matplotlib.pyplot as plt
    import numpy as np
    import pyfolio as pf

    from runners.report.tearsheets import _draw_monthly_heatmap, _monthly_table, _quiet, _tidy_axes

    rng = np.random.default_rng(5)
    idx = pd.bdate_range("2006-01-02", "2024-12-31", tz="UTC")  # 19 calendar years
    rets = pd.Series(rng.normal(3e-4, 0.01, len(idx)), idx)
    with _quiet():
        fig, (ax_heat, ax_year) = plt.subplots(1, 2, figsize=(9, 5))
        _draw_monthly_heatmap(ax_heat, _monthly_table(rets), annot_size=None)
        pf.plotting.plot_annual_returns(rets, ax=ax_year)
        assert ax_year.get_legend() is not None  # pyfolio's "Mean" legend, on the bars
        _tidy_axes(fig, rets)
        fig.canvas.draw()
    for ax in (ax_heat, ax_year):
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert 6 <= len(labels) <= 12 and labels[0] in {"2006", "2024"}
        boxes = [t.get_window_extent() for t in ax.get_yticklabels() if t.get_text()]
        assert all(not a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    assert ax_year.get_legend() is None
    mean = 100 * ep.aggregate_returns(rets, "yearly").mean()
    assert ax_year.get_title() == f"Annual returns\n(dashed: mean {mean:.1f}%)"
    plt.close(fig)


def test_asset_lines_take_the_report_palette():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colors as mcolors
    from matplotlib.figure import Figure

    from runners.report.figures import asset_colors
    from runners.report.tearsheets import _tidy_axes

    assets = [f"A{k}" for k in range(12)]
    fig = Figure()
    ax = fig.add_subplot()
    ax.set_title("Portfolio allocation over time, only top 10 holdings")
    for a in assets[::-1]:
        ax.plot([0, 1], [0, 1], label=a)
    ax.legend()
    _tidy_axes(fig, pd.Series(dtype=float), assets=assets)
    want = asset_colors(assets)
    for line in ax.get_lines():
        assert mcolors.to_hex(line.get_color()) == want[line.get_label()]
    for handle, text in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts()):
        assert mcolors.to_hex(handle.get_color()) == want[text.get_text()]


def test_utc_dates_plot_at_the_same_place_without_object_conversion(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.figure import Figure

    from runners.report.tearsheets import _naive_utc_date_conversion, naive_utc_dates

    idx = pd.bdate_range("2021-03-01", periods=60, tz="UTC")
    series = pd.Series(np.linspace(1.0, 2.0, len(idx)), idx)
    expected = mdates.date2num(idx.tz_localize(None).to_numpy())
    # every form pandas' converter receives comes out as naive UTC datetime64
    for form in (idx, pd.Series(idx), idx.array, np.asarray(idx.astype(object))):
        out = naive_utc_dates(form)
        assert isinstance(out, np.ndarray) and out.dtype.kind == "M"
        np.testing.assert_array_equal(mdates.date2num(out), expected)
    for other in (series, idx.tz_localize(None), [1.0, 2.0]):  # anything else is left alone
        assert naive_utc_dates(other) is other

    seen: list[object] = []
    original = mdates.date2num

    def spy(d):  # noqa: ANN001, ANN202
        seen.append(d)
        return original(d)

    def plotted(context) -> np.ndarray:  # noqa: ANN001
        fig = Figure()
        ax = fig.add_subplot()
        with pd.plotting.plot_params.use("x_compat", True), context:
            series.plot(ax=ax)
            ax.fill_between(series.index, 0.0, series.to_numpy())
        return ax.get_lines()[0].get_xydata()

    import contextlib

    before = plotted(contextlib.nullcontext())
    monkeypatch.setattr(mdates, "date2num", spy)
    after = plotted(_naive_utc_date_conversion())
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(after[:, 0], expected)
    # matplotlib never had to convert tz-aware dates one object at a time
    tz_aware = [d for d in seen if getattr(getattr(d, "dtype", None), "tz", None) is not None
                or (isinstance(d, np.ndarray) and d.dtype == object and len(d))]
    assert not tz_aware
