"""Time-axis risk contributions of a backtrader strategy: analyzer, summary table and figures.

The math lives in :mod:`strategies.time_axis` (pure numpy); this module records what a backtest
held and how risky it was ex ante, and reports how the variance is spread over years and months.

For each bar ``t`` (after the strategy's ``next``) the analyzer records the money position of every
data feed, ``theta_{i,t} = size_i * close_{i,t}`` (currency), and an ex-ante covariance ``Sigma_t`` of
the feeds' *next-bar* simple returns built from information up to ``t`` only. The contributions are

    c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i        (currency^2, per bar)

so that ``sum_i c_{i,t}`` is the ex-ante variance of the next bar's P&L and ``sum_{i,t} c_{i,t}`` the
ex-ante variance of the cumulative P&L (aggregation property, zero-drift reference measure).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError
from strategies.time_axis import (
    ZhouLiMarket,
    ewma_covariances,
    herfindahl,
    mean_variance_contributions,
    time_risk_contributions,
)

__all__ = ["TimeRiskContribution", "time_risk_summary", "plot_mean_variance_contributions",
           "plot_time_risk"]

CovarianceFn = Callable[[np.ndarray], np.ndarray]
"""``f(returns_so_far (t, n)) -> (n, n)`` per-bar covariance of the next bar's simple returns."""


class TimeRiskContribution(bt.Analyzer):
    """Record money positions and ex-ante covariances; decompose the variance over assets and bars.

    Params
    ------
    lam : float
        EWMA decay of the default covariance (RiskMetrics 0.94, zero mean):
        ``S_t = sum_{s<=t} lam^(t-s) r_s r_s' / sum_{s<=t} lam^(t-s)``, i.e. the recursion
        ``S_t = lam S_{t-1} + (1 - lam) r_t r_t'`` with bias-corrected start-up weights, ``r_s`` the
        feeds' simple close-to-close returns up to and including bar ``t`` (causal; the forecast for
        bar ``t + 1``; see :func:`strategies.time_axis.ewma_covariances`).
    covariance : callable or None
        Replaces the EWMA: called on every bar with the array of returns so far, shape (t, n), it
        returns the per-bar (not annualized) covariance of the next bar's returns, shape (n, n).
        ``None`` on bars with fewer than ``min_periods`` returns.
    min_periods : int
        Bars with fewer returns than this are not reported (default 20).
    scale : {"money", "weight"}
        ``"money"`` (default): positions in currency, contributions in currency^2. ``"weight"``:
        positions divided by the portfolio value of the bar (the source's price regularization),
        contributions in return^2; use it to compare strategies whose wealth grows differently.

    Notes
    -----
    The position recorded at bar ``t`` is the one held at its close; orders sent at ``t`` fill at the
    next open, so the exposure over ``(t, t+1]`` differs from it by that fill only.

    ``get_analysis()`` returns a DataFrame of shape (T, n): index the bar dates, one column per data
    feed (its ``_name``, else ``data<i>``), values ``c_{i,t}``. ``positions``, ``values`` and
    ``covariances`` keep the recorded inputs after the run.
    """

    params = (
        ("lam", 0.94),
        ("covariance", None),
        ("min_periods", 20),
        ("scale", "money"),
    )

    def start(self) -> None:
        if self.p.scale not in ("money", "weight"):
            raise ConfigError(f"scale must be 'money' or 'weight', got {self.p.scale!r}")
        if not 0.0 < self.p.lam < 1.0:
            raise ConfigError(f"lam must be in (0, 1), got {self.p.lam!r}")
        if self.p.min_periods < 1:
            raise ConfigError(f"min_periods must be >= 1, got {self.p.min_periods!r}")
        self._names = [d._name or f"data{i}" for i, d in enumerate(self.datas)]
        self._dates: list[pd.Timestamp] = []
        self._money: list[np.ndarray] = []
        self._closes: list[np.ndarray] = []
        self._values: list[float] = []
        self._user_covs: list[np.ndarray | None] = []
        self._result: pd.DataFrame | None = None

    def next(self) -> None:
        # a feed that has not started yet gives NaN, reported as a DataError by get_analysis
        closes = np.array([d.close[0] if len(d) else np.nan for d in self.datas], dtype=float)
        sizes = np.array([self.strategy.getposition(d).size for d in self.datas], dtype=float)
        self._dates.append(pd.Timestamp(bt.num2date(self.datas[0].datetime[0])))
        self._closes.append(closes)
        self._money.append(sizes * closes)
        self._values.append(float(self.strategy.broker.getvalue()))
        if self.p.covariance is not None:
            c = np.asarray(self._closes)
            rets = c[1:] / c[:-1] - 1.0
            if rets.shape[0] >= self.p.min_periods:
                cov = np.asarray(self.p.covariance(rets), dtype=float)
                n = len(self.datas)
                if cov.shape != (n, n):
                    raise DataError(f"covariance callable returned shape {cov.shape}, expected {(n, n)}")
                self._user_covs.append(cov)
            else:
                self._user_covs.append(None)

    def _compute(self) -> pd.DataFrame:
        n = len(self.datas)
        idx = pd.DatetimeIndex(self._dates, name="date")
        if not self._dates:
            self.positions = pd.DataFrame(columns=self._names, dtype=float)
            self.values = pd.Series(dtype=float)
            self.covariances = np.empty((0, n, n))
            return pd.DataFrame(columns=self._names, dtype=float)
        money = np.asarray(self._money)
        closes = np.asarray(self._closes)
        values = np.asarray(self._values)
        if np.any(closes <= 0) or not np.all(np.isfinite(closes)):
            raise DataError("TimeRiskContribution: non-positive or non-finite close in a feed")
        rets = closes[1:] / closes[:-1] - 1.0
        covs = np.full((len(closes), n, n), np.nan)
        if self.p.covariance is None:
            if rets.shape[0]:
                covs[1:] = ewma_covariances(rets, self.p.lam, self.p.min_periods)
        else:
            for t, c in enumerate(self._user_covs):
                if c is not None:
                    covs[t] = c
        valid = np.all(np.isfinite(covs), axis=(1, 2))
        theta = money if self.p.scale == "money" else money / values[:, None]
        self.positions = pd.DataFrame(money, index=idx, columns=self._names)
        self.values = pd.Series(values, index=idx, name="value")
        self.covariances = covs
        if not valid.any():
            return pd.DataFrame(columns=self._names, dtype=float, index=idx[:0])
        contrib = time_risk_contributions(theta[valid], covs[valid], dt=1.0)
        return pd.DataFrame(contrib, index=idx[valid], columns=self._names)

    def get_analysis(self) -> pd.DataFrame:  # type: ignore[override]
        """Contributions ``c_{i,t}``, DataFrame (T, n): dates x feeds (currency^2 or return^2)."""
        if self._result is None:
            self._result = self._compute()
        return self._result


def _shares(groups: pd.Series) -> pd.Series:
    total = groups.sum()
    if not np.isfinite(total) or total == 0.0:
        raise DataError(f"time_risk_summary: total contribution is {total!r}")
    return groups / total


def time_risk_summary(contributions: pd.DataFrame) -> pd.DataFrame:
    """How a strategy's ex-ante variance is spread over years, months and assets.

    Parameters
    ----------
    contributions : DataFrame, shape (T, n)
        ``TimeRiskContribution.get_analysis()``: DatetimeIndex, one column per asset.

    Returns
    -------
    DataFrame
        One column ``value``, index a MultiIndex ``(section, item)``:

        * ``("year", "<YYYY>")``: share of the total variance in each calendar year (sum 1);
        * ``("asset", "<name>")``: share of each asset (sum 1);
        * ``("concentration", ...)``: ``hhi_years`` and ``effective_years`` (= 1 / HHI),
          ``hhi_months`` and ``effective_months`` over calendar months, ``n_years``, ``n_months``
          (buckets with data; partial first/last buckets count as they are), and ``total_variance``
          (sum of all contributions, units of the input).

        Concatenate strategies with ``pd.concat({name: summary}, axis=1)``.

    Raises
    ------
    DataError
        Without a DatetimeIndex, with non-finite values, or when the total is zero.
    """
    if not isinstance(contributions.index, pd.DatetimeIndex):
        raise DataError("time_risk_summary: contributions need a DatetimeIndex")
    if contributions.empty:
        raise DataError("time_risk_summary: no contributions")
    values = contributions.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise DataError("time_risk_summary: non-finite contributions")
    per_bar = contributions.sum(axis=1)
    idx = contributions.index
    years = _shares(per_bar.groupby(idx.year).sum())
    months = _shares(per_bar.groupby(idx.to_period("M")).sum())
    assets = _shares(contributions.sum(axis=0))
    hhi_y = herfindahl(years.to_numpy())
    hhi_m = herfindahl(months.to_numpy())
    rows: list[tuple[tuple[str, str], float]] = []
    rows += [(("year", str(y)), float(s)) for y, s in years.items()]
    rows += [(("asset", str(a)), float(s)) for a, s in assets.items()]
    rows += [
        (("concentration", "hhi_years"), hhi_y),
        (("concentration", "effective_years"), 1.0 / hhi_y),
        (("concentration", "n_years"), float(len(years))),
        (("concentration", "hhi_months"), hhi_m),
        (("concentration", "effective_months"), 1.0 / hhi_m),
        (("concentration", "n_months"), float(len(months))),
        (("concentration", "total_variance"), float(values.sum())),
    ]
    index = pd.MultiIndex.from_tuples([k for k, _ in rows], names=["section", "item"])
    return pd.DataFrame({"value": [v for _, v in rows]}, index=index)


def plot_mean_variance_contributions(
    path: str | Path, market: ZhouLiMarket | None = None, times: tuple[float, ...] = (0.25, 0.75)
) -> Path:
    """Figure of the section 4.3 finding: mean-variance risk contributions are quadratic in the spot.

    Left panel: bond, stock and total contribution densities against the spot wealth ``x_t`` at the
    first of ``times``, for two risk-aversion levels (the aversion shifts the curves, not their
    curvature). Right panel: the stock's contribution at each time in ``times``. The stock's
    contribution is negative at extreme wealth (shorting above the bliss wealth
    ``gamma e^{-r(T-t)}``, and far below the mean).

    Parameters
    ----------
    path : str or Path
        Output PNG file.
    market : ZhouLiMarket, optional
        Defaults to ``ZhouLiMarket()`` (r 3%, b 10%, sigma 20%, x0 1, T 1, aversion 1).
    times : tuple of float
        Times in years (within ``(0, T)``).

    Returns
    -------
    Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = market or ZhouLiMarket()
    if not all(0.0 <= t < m.horizon for t in times) or not times:
        raise ConfigError(f"times must lie in [0, T), got {times!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def wealth_grid(mk: ZhouLiMarket, t: float) -> np.ndarray:
        # both zeros of the stock's contribution: y = b K / (r E_t) (far below) and y = 0 (bliss)
        low = mk.bliss_wealth(t) + (mk.b / mk.r) * (mk.mean_wealth(t) - mk.bliss_wealth(t))
        span = mk.bliss_wealth(t) - low
        return np.linspace(low - 0.15 * span, mk.bliss_wealth(t) + 0.15 * span, 400)

    def wealth_band(mk: ZhouLiMarket, t: float, z: float = 2.326) -> tuple[float, float]:
        # y_t = y0 exp((r - 1.5 rho) t - sqrt(rho) W_t): 1%-99% quantiles of x_t
        q = mk.y0 * np.exp((mk.r - 1.5 * mk.rho) * t + np.array([z, -z]) * np.sqrt(mk.rho * t))
        return float(mk.bliss_wealth(t) + q[0]), float(mk.bliss_wealth(t) + q[1])

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    t0 = times[0]
    styles = {"solid": m, "dashed": ZhouLiMarket(m.r, m.b, m.sigma, m.x0, m.horizon,
                                                  2.0 * m.risk_aversion)}
    x = wealth_grid(m, t0)
    ax = axes[0]
    ax.axvspan(*wealth_band(m, t0), color="tab:green", alpha=0.08,
               label="1%-99% range of x_t (aversion 1)")
    for ls, mk in styles.items():
        cb, cs = mean_variance_contributions(mk, t0, x)
        tag = f"aversion {mk.risk_aversion:g}"
        ax.plot(x, cs, color="tab:red", ls=ls, label=f"stock, {tag}")
        ax.plot(x, cb, color="tab:blue", ls=ls, label=f"bond, {tag}")
        ax.plot(x, cs + cb, color="black", ls=ls, lw=0.8, label=f"total, {tag}")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axvline(m.mean_wealth(t0), color="tab:green", lw=0.8, ls=":", label="E[x_t] (aversion 1)")
    ax.axvline(m.bliss_wealth(t0), color="tab:purple", lw=0.8, ls=":",
               label="bliss wealth (aversion 1): stock shorted above")
    ax.set_title(f"Risk contributions against the spot wealth at t = {t0:g} y")
    ax.set_xlabel("spot wealth x_t (currency)")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    ax = axes[1]
    for t in times:
        xt = wealth_grid(m, t)
        _, cs = mean_variance_contributions(m, t, xt)
        ax.plot(xt, cs, label=f"stock, t = {t:g} y")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_title("The stock's contribution is negative at both extremes of the spot")
    ax.set_xlabel("spot wealth x_t (currency)")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=8, loc="lower center")
    fig.suptitle(
        f"Zhou-Li mean-variance policy: r={m.r:g}, b={m.b:g}, sigma={m.sigma:g}, x0={m.x0:g}, "
        f"T={m.horizon:g} y; Var(x_T)={m.terminal_variance:.4f}"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_time_risk(
    contributions: dict[str, pd.DataFrame] | pd.DataFrame, path: str | Path, freq: str = "year"
) -> Path:
    """Stacked bars of each strategy's variance share per year (or month), split by asset.

    Parameters
    ----------
    contributions : DataFrame or dict of name -> DataFrame
        Outputs of ``TimeRiskContribution.get_analysis()``.
    path : str or Path
        Output PNG.
    freq : {"year", "month"}
        Time bucket.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if freq not in ("year", "month"):
        raise ConfigError(f"freq must be 'year' or 'month', got {freq!r}")
    frames = contributions if isinstance(contributions, dict) else {"strategy": contributions}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = len(frames)
    fig, axes = plt.subplots(k, 1, figsize=(10, 3.2 * k), squeeze=False, constrained_layout=True)
    for ax, (name, c) in zip(axes[:, 0], frames.items()):
        key = c.index.year if freq == "year" else c.index.to_period("M").astype(str)
        g = c.groupby(key).sum()
        share = g / g.to_numpy().sum()
        share.plot.bar(stacked=True, ax=ax, width=0.85)
        hhi = herfindahl(share.sum(axis=1).to_numpy())
        ax.axhline(1.0 / len(share), color="black", lw=0.8, ls="--", label="equal share")
        ax.set_title(f"{name}: variance share by {freq} (HHI {hhi:.3f}, equal {1 / len(share):.3f})")
        ax.set_xlabel(freq)
        ax.set_ylabel("share of total ex-ante variance")
        ax.legend(fontsize=7, ncol=4)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
