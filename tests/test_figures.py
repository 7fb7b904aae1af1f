"""Figures: drawn from a fake run, checked for content (titles, scales, legends, data) and saved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _fake_run import ASSETS, write_fake_run
from matplotlib.figure import Figure

from drb.errors import DataError
from runners.report import figures as F
from runners.rundir import load_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return load_run(write_fake_run(tmp_path_factory.mktemp("run"), n_days=260))


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _save_ok(fig: Figure, path) -> None:
    F.save_figure(fig, path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_equity_and_drawdowns(run, tmp_path):
    fig = F.plot_equity_drawdowns(run.returns)
    top, bottom = fig.axes[:2]
    assert top.get_yscale() == "log"
    assert "Equity curves" in top.get_title() and bottom.get_title() == "Drawdowns"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert [lab.split(" (")[0] for lab in labels] == run.strategies
    # the drawdown line of each strategy is <= 0 and ends at its final drawdown
    for line, name in zip(bottom.get_lines(), run.strategies):
        y = line.get_ydata()
        assert np.all(y <= 1e-12)
        wealth = (1 + run.returns[name].dropna()).cumprod()
        expected = min(1.0, wealth.iloc[-1] / max(1.0, wealth.max())) - 1
        assert y[-1] == pytest.approx(expected)
    # the curve starts at 1 on the day before the first return
    assert top.get_lines()[0].get_ydata()[0] == 1.0
    _save_ok(fig, tmp_path / "eq.png")


def _bands(ax) -> list[tuple[float, float, tuple]]:
    """(y0, y1, colour) of each regime-band spell drawn above the stack of ``ax``."""
    out = []
    for c in ax.collections:
        if c.get_label() in ASSETS:
            continue
        ys = c.get_paths()[0].vertices[:, 1]
        if ys.min() >= 1.0:
            out.append((round(float(ys.min()), 6), round(float(ys.max()), 6), tuple(c.get_facecolor()[0])))
    return out


def test_budgets_figure(run, tmp_path):
    fig = F.plot_budgets(run.budgets, list(ASSETS))
    ax_target, ax_smooth = fig.axes[:2]
    assert "Target" in ax_target.get_title() and "Smoothed" in ax_smooth.get_title()
    regimes = F.regime_labels(run.budgets["regime"])
    phases = [r.split("/")[0] for r in regimes]
    vols = [r.split("/")[1] for r in regimes]
    legend = [t.get_text() for t in ax_smooth.get_legend().get_texts()]
    assert legend == (["phase (upper band)"] + [p for p in F.PHASES if p in phases]
                      + ["", "volatility (lower band)"] + [v for v in F.VOL_STATES if v in vols])
    assert [t.get_text() for t in ax_target.get_legend().get_texts()] == list(ASSETS)
    # two bands above the stack, one patch per spell, coloured by phase / volatility state
    dates = pd.DatetimeIndex(run.budgets.index)
    bands = _bands(ax_smooth)
    upper = sorted({b[:2] for b in bands}, reverse=True)[0]
    top_colours = [b[2] for b in bands if b[:2] == upper]
    lower_colours = [b[2] for b in bands if b[:2] != upper]
    from matplotlib.colors import to_rgba

    assert top_colours == [to_rgba(F.PHASE_COLORS[p]) for *_, p in F._spells(dates, phases)]
    assert lower_colours == [to_rgba(F.VOL_COLORS[v]) for *_, v in F._spells(dates, vols)]
    # the stack's top edge is the sum of the budgets: 100 %
    polys = [c for c in ax_smooth.collections if c.get_label() in ASSETS]
    assert len(polys) == len(ASSETS)
    top_edge = polys[-1].get_paths()[0].vertices[:, 1].max()
    assert top_edge == pytest.approx(1.0, abs=1e-9)
    _save_ok(fig, tmp_path / "budgets.png")


def test_budgets_missing_column_is_data_error(run):
    with pytest.raises(DataError, match="target_equity"):
        F.plot_budgets(run.budgets.drop(columns=["target_equity"]), list(ASSETS))


def test_risk_contributions_and_weights(run, tmp_path):
    fig = F.plot_risk_contributions(run.risk_contributions)
    assert [t for t in _titles(fig) if t] == run.strategies
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == list(ASSETS)
    _save_ok(fig, tmp_path / "rc.png")
    # with budgets: the dynamic model's panel shows its budgets b(t) as dashed boundaries
    fig = F.plot_risk_contributions(run.risk_contributions, run.budgets)
    drb_ax = next(ax for ax in fig.axes if ax.get_title() == "DynamicRiskBudget")
    dashed = [ln for ln in drb_ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == len(ASSETS) - 1
    last = run.budgets[[f"smoothed_{a}" for a in ASSETS]].iloc[-1].cumsum().to_numpy()[:-1]
    assert [ln.get_ydata()[-1] for ln in dashed] == pytest.approx(list(last))
    assert [t.get_text() for t in drb_ax.get_legend().get_texts()] == ["budgets b(t) in force"]
    other = next(ax for ax in fig.axes if ax.get_title() == "EqualWeight")
    assert not other.get_lines()
    fig = F.plot_weights(run.weights)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [*ASSETS, "cash"]
    _save_ok(fig, tmp_path / "w.png")
    with pytest.raises(DataError):
        F.plot_weights({})


def test_percent_ticks_carry_the_decimals_their_step_needs():
    fig = F._new_figure(4, 3)
    ax = fig.subplots()
    ax.plot([0, 1], [0.0, -0.19])
    F._pct_axis(ax, nice=True)
    fig.canvas.draw()
    labels = [t.get_text().replace("\u2212", "-") for t in ax.get_yticklabels()]
    locs = ax.get_yticks()
    assert len(set(labels)) == len(labels)  # no two ticks with the same label
    for lab, v in zip(labels, locs):
        assert float(lab.rstrip("%")) == pytest.approx(100 * v, abs=1e-9)  # each label is exact
    from matplotlib.ticker import FixedLocator

    ax.yaxis.set_major_locator(FixedLocator([0.0, 0.025, 0.05, 0.075]))  # 2.5 % steps need one
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.0%", "2.5%", "5.0%", "7.5%"]
    F._pct_axis(ax, nice=True)
    ax.set_ylim(-0.012, 0.0)  # a 0.2 % step needs one decimal
    fig.canvas.draw()
    labels = [t.get_text().replace("\u2212", "-") for t in ax.get_yticklabels()]
    assert "-0.2%" in labels or "-0.4%" in labels
    assert all(float(lab.rstrip("%")) == pytest.approx(100 * v, abs=1e-9)
               for lab, v in zip(labels, ax.get_yticks()))


def test_turnover_by_year_by_hand():
    reb = pd.DataFrame({
        "date": pd.to_datetime(["2023-01-03", "2023-06-01", "2024-02-01", "2024-03-01"]),
        "strategy": ["A", "A", "A", "B"],
        "trigger": ["initial", "periodic", "regime", "periodic"],
        "turnover": [0.5, 0.1, 0.2, 0.05],
    })
    t = F.turnover_by_year(reb, ["A", "B", "C"])
    assert t.loc[2023].tolist() == pytest.approx([0.1, 0.0, 0.0])
    assert t.loc[2024].tolist() == pytest.approx([0.2, 0.05, 0.0])


def test_turnover_figure(run, tmp_path):
    fig = F.plot_turnover_per_year(run.rebalances, run.returns)
    ax = fig.axes[0]
    expected = F.turnover_by_year(run.rebalances, run.strategies)
    heights = [p.get_height() for p in ax.patches]
    assert sorted(heights) == pytest.approx(sorted(expected.to_numpy().ravel()))
    assert "partial" in ax.get_title()
    # the legend sits right of the bars, not over them
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    _save_ok(fig, tmp_path / "t.png")


def test_extreme_months_figure(tmp_path):
    vals = pd.Series({"DynamicRiskBudget": -0.028, "RiskParity": -0.042, "MinimumVariance": np.nan})
    fig = F.plot_extreme_months(vals, n_months=7, counts=pd.Series({"DynamicRiskBudget": 7, "RiskParity": 7}))
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([-0.028, -0.042, 0.0])
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "-2.80%\n(n=7)" and texts[2] == "n/a"
    assert "7 months" in ax.get_title()
    assert ax.get_legend() is None  # no equity reference given
    _save_ok(fig, tmp_path / "x.png")
    fig = F.plot_extreme_months(vals, n_months=7, equity_return=-0.081)
    ax = fig.axes[0]
    ref = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(ref) == 1 and ref[0].get_ydata()[0] == pytest.approx(-0.081)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["equity asset itself: -8.10%"]
    assert ax.get_ylim()[0] < -0.081  # the line is inside the axes


def test_regimes_figure(run, tmp_path):
    fig = F.plot_regimes(run.regimes, run.transition)
    timeline, heat = fig.axes[:2]
    assert "Regime timeline" in timeline.get_title()
    assert "cycle from price-based proxy (no macro data)" in timeline.get_title()
    assert "transition matrix" in heat.get_title()
    img = heat.get_images()[0].get_array()
    assert img.shape == (12, 12)
    np.testing.assert_allclose(np.asarray(img).sum(axis=1), 1.0)
    _save_ok(fig, tmp_path / "r.png")
    # without a transition matrix: the timeline alone
    assert len(F.plot_regimes(run.regimes, None).axes) == 1


def test_regime_colours_are_distinct():
    regs = [f"{p}/{v}" for p in F.PHASES for v in F.VOL_STATES]
    colours = {F.regime_color(r) for r in regs}
    assert len(colours) == 12


def test_warm_up_days_form_one_grey_spell(run):
    budgets = run.budgets.copy()
    budgets["regime"] = budgets["regime"].astype("str")  # pandas string dtype keeps NaN missing
    budgets.iloc[:40, budgets.columns.get_loc("regime")] = np.nan
    assert F.regime_labels(budgets["regime"])[:2] == [F.WARMUP, F.WARMUP]
    fig = F.plot_budgets(budgets, list(ASSETS))
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend.count("warm-up (no regime)") == 1
    # one band patch per spell: the warm-up is a single spell in each band, not one per day
    labels = F.regime_labels(budgets["regime"])
    dates = pd.DatetimeIndex(budgets.index)
    n_phase = len(F._spells(dates, [r.split("/")[0] for r in labels]))
    n_vol = len(F._spells(dates, [r.split("/")[-1] for r in labels]))
    assert len(_bands(fig.axes[1])) == n_phase + n_vol
    regimes = run.regimes.copy()
    regimes["regime"] = budgets["regime"]
    timeline = F.plot_regimes(regimes, run.transition).axes[0]
    assert timeline.get_yticklabels()[-1].get_text() == F.WARMUP


def _lab(color: str) -> np.ndarray:
    """CIE-Lab (D65) of a matplotlib colour."""
    from matplotlib import colors as mcolors

    rgb = np.array(mcolors.to_rgb(color))
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_asset_palette_is_distinct_up_to_20_assets():
    tickers = ["SPY", "SHY", "TLT", "IEF", "GLD", "DBC", "VNQ", "EFA", "EEM", "LQD", "HYG", "TIP",
               "XLE", "XLF", "XLK", "XLU", "XLV", "QQQ", "IWM", "AGG"]
    colors = F.asset_colors(tickers)
    assert len(set(colors.values())) == 20
    labs = [_lab(c) for c in colors.values()]
    gaps = [np.linalg.norm(a - b) for k, a in enumerate(labs) for b in labs[k + 1:]]
    assert min(gaps) > 20  # every pair clearly apart (CIE76 distance)
    # none is the cash grey or the dynamic model's black
    assert all(np.linalg.norm(_lab(c) - _lab(g)) > 15 for c in colors.values() for g in ("#bbbbbb", "#000000"))
    # the default classes keep their colours, alone or among tickers
    mixed = F.asset_colors(["SPY", "equity", "bond"])
    assert mixed["equity"] == F.asset_colors(["equity"])["equity"] and len(set(mixed.values())) == 3


def test_an_asset_keeps_its_colour_in_every_figure():
    from matplotlib import colors as mcolors

    tickers = [f"T{k:02d}" for k in range(12)]
    palette = F.asset_colors(tickers)
    idx = pd.bdate_range("2024-01-01", periods=30)
    full = pd.DataFrame(1.0 / 12, index=idx, columns=tickers)
    subset = pd.DataFrame(0.25, index=idx, columns=tickers[8:][::-1])  # other assets, other order
    figs = [F.plot_weights({"A": full, "B": subset}, colors=palette),
            F.plot_risk_contributions({"B": subset}, colors=palette)]
    seen = 0
    for fig in figs:
        for ax in fig.axes:
            for coll in ax.collections:
                if coll.get_label() in palette:
                    assert mcolors.to_hex(coll.get_facecolor()[0]) == palette[coll.get_label()]
                    seen += 1
    assert seen == 12 + 12 + 4  # each weights panel stacks every asset of the figure
    # without the run's palette the subset alone would start the palette again
    assert F.asset_colors(list(subset.columns))[tickers[11]] != palette[tickers[11]]


def test_save_figure_draws_once_with_the_pixels_of_savefig(run, tmp_path, monkeypatch):
    import io

    from PIL import Image

    fig = F.plot_equity_drawdowns(run.returns)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=60, facecolor="white", format="png")
    expected = np.asarray(Image.open(buf).convert("RGB"))
    dpi0 = fig.get_dpi()

    draws = []
    original = Figure.draw

    def counting_draw(self, renderer):  # noqa: ANN001, ANN202
        draws.append(renderer)
        return original(self, renderer)

    monkeypatch.setattr(Figure, "draw", counting_draw)
    F.save_figure(fig, tmp_path / "eq.png", dpi=60)
    assert len(draws) == 1  # savefig lays a constrained figure out in a draw of its own
    got = Image.open(tmp_path / "eq.png")
    assert got.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(got), expected)
    assert fig.get_dpi() == dpi0  # the figure is left as it was


def test_encode_png_round_trips_through_pillow():
    import io

    from PIL import Image

    rng = np.random.default_rng(5)
    rgb = np.full((37, 23, 3), 255, dtype=np.uint8)
    rgb[5:30, 3:20] = rng.integers(0, 256, size=(25, 17, 3), dtype=np.uint8)
    png = F.encode_png(rgb)
    assert png.startswith(PNG)
    img = Image.open(io.BytesIO(png))
    img.load()  # checks every chunk's CRC and the zlib stream
    assert img.mode == "RGB" and img.size == (23, 37)
    np.testing.assert_array_equal(np.asarray(img), rgb)
    with pytest.raises(ValueError, match="uint8"):
        F.encode_png(rgb.astype(float))
    with pytest.raises(ValueError, match="height, width, 3"):
        F.encode_png(np.zeros((0, 4, 3), dtype=np.uint8))
