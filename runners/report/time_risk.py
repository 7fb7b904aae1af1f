"""The section 4.3 figure: mean-variance risk contributions along the time axis (Zhou-Li market).

``drb time-risk`` writes ``mean_variance_contributions.png`` (:func:`write_time_risk_figure`). The
math lives in :mod:`strategies.time_axis.mean_variance`; a comparison's own time-risk table and
figure are :mod:`runners.experiments.time_risk`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drb.errors import ConfigError
from drb.io import atomic_savefig
from strategies.time_axis import (
    ZhouLiMarket,
    mean_variance_contributions,
    zhou_li_sign_change_price,
    zhou_li_wealth_at_price,
)

__all__ = ["plot_mean_variance_contributions", "write_time_risk_figure"]


def plot_mean_variance_contributions(
    path: str | Path, market: ZhouLiMarket | None = None, times: tuple[float, ...] = (0.25, 0.75)
) -> Path:
    """Figure of the section 4.3 findings for the Zhou-Li mean-variance policy.

    Left: bond, stock and total contribution densities against the spot wealth ``x_t`` at the first
    of ``times``, for two risk-aversion levels: quadratic in ``x_t``, the aversion shifts the curves
    but not their curvature. The stock's contribution is negative at both extremes of the wealth;
    above the bliss wealth ``gamma e^{-r(T-t)}`` (the policy shorts the stock) is not reached from
    ``x0`` under continuous rebalancing and is shaded.

    Right: the same contributions against the stock's spot price ``S_t`` (``s0 = 1``, log scale)
    through the pathwise map :func:`strategies.time_axis.zhou_li_wealth_at_price`, at each time in
    ``times``; the stock's contribution turns negative below
    :func:`strategies.time_axis.zhou_li_sign_change_price` (marked), i.e. after a crash of the stock,
    while the policy is still long.

    Parameters
    ----------
    path : str or Path
        Output PNG file.
    market : ZhouLiMarket, optional
        Defaults to ``ZhouLiMarket()`` (r 3%, b 10%, sigma 20%, x0 1, T 1, aversion 1); the right
        panel needs ``b > r > 0``.
    times : tuple of float
        Times in years (within ``[0, T)``).

    Returns
    -------
    Path
        The written file.
    """
    from matplotlib.figure import Figure

    m = market or ZhouLiMarket()
    if not times or not all(0.0 <= t < m.horizon for t in times):
        raise ConfigError(f"times must lie in [0, T), got {times!r}")
    fig = Figure(figsize=(14, 5.8), layout="constrained")
    axes = fig.subplots(1, 2)
    _wealth_panel(axes[0], m, times[0])
    _price_panel(axes[1], m, times)
    fig.suptitle(
        f"Zhou-Li mean-variance policy: r={m.r:g}, b={m.b:g}, sigma={m.sigma:g}, x0={m.x0:g}, "
        f"T={m.horizon:g} y, aversion {m.risk_aversion:g}; Var(x_T)={m.terminal_variance:.4f}"
    )
    return atomic_savefig(fig, path, dpi=110)


def _wealth_grid(mk: ZhouLiMarket, t: float) -> np.ndarray:
    """Spot wealths around both zeros of the stock's contribution: ``y = b K / (r E_t)`` (far
    below) and ``y = 0`` (bliss), 400 points."""
    low = mk.bliss_wealth(t) + (mk.b / mk.r) * (mk.mean_wealth(t) - mk.bliss_wealth(t))
    span = mk.bliss_wealth(t) - low
    return np.linspace(low - 0.15 * span, mk.bliss_wealth(t) + 0.15 * span, 400)


def _wealth_band(mk: ZhouLiMarket, t: float, z: float = 2.326) -> tuple[float, float]:
    """1%-99% quantiles of ``x_t``, from ``y_t = y0 exp((r - 1.5 rho) t - sqrt(rho) W_t)``."""
    q = mk.y0 * np.exp((mk.r - 1.5 * mk.rho) * t + np.array([z, -z]) * np.sqrt(mk.rho * t))
    return float(mk.bliss_wealth(t) + q[0]), float(mk.bliss_wealth(t) + q[1])


def _wealth_panel(ax: Any, m: ZhouLiMarket, t0: float) -> None:
    """Left panel: contributions against the spot wealth at ``t0``, two aversion levels."""
    styles = {"solid": m, "dashed": ZhouLiMarket(m.r, m.b, m.sigma, m.x0, m.horizon,
                                                  2.0 * m.risk_aversion)}
    x = _wealth_grid(m, t0)
    ax.axvspan(*_wealth_band(m, t0), color="tab:green", alpha=0.08,
               label=f"1%-99% range of x_t (aversion {m.risk_aversion:g})")
    ax.axvspan(float(m.bliss_wealth(t0)), float(x[-1]), color="grey", alpha=0.15,
               label="above the bliss wealth: stock shorted (not reached from x0)")
    for ls, mk in styles.items():
        cb, cs = mean_variance_contributions(mk, t0, x)
        tag = f"aversion {mk.risk_aversion:g}"
        ax.plot(x, cs, color="tab:red", ls=ls, label=f"stock, {tag}")
        ax.plot(x, cb, color="tab:blue", ls=ls, label=f"bond, {tag}")
        ax.plot(x, cs + cb, color="black", ls=ls, lw=0.8, label=f"total, {tag}")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axvline(m.mean_wealth(t0), color="tab:green", lw=0.8, ls=":",
               label=f"E[x_t] (aversion {m.risk_aversion:g})")
    ax.set_title(f"Against the spot wealth at t = {t0:g} y:\nquadratic; the stock's contribution is "
                 "negative at both ends")
    ax.set_xlabel(f"spot wealth x_t (currency; x0 = {m.x0:g})")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)


def _price_panel(ax: Any, m: ZhouLiMarket, times: tuple[float, ...]) -> None:
    """Right panel: contributions against the stock's spot price at each of ``times``."""
    import matplotlib
    import matplotlib.ticker

    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    s_lo = 0.8 * float(np.min(zhou_li_sign_change_price(m, np.asarray(times))))
    s_grid = np.exp(np.linspace(np.log(s_lo), np.log(2.5), 400))
    for t, col in zip(times, colours):
        xs = zhou_li_wealth_at_price(m, t, s_grid)
        cb, cs = mean_variance_contributions(m, t, xs)
        ax.plot(s_grid, cs, color=col, lw=1.6, label=f"stock, t = {t:g} y")
        ax.plot(s_grid, cb, color=col, lw=0.9, ls="--", label=f"bond, t = {t:g} y")
        s_star = float(zhou_li_sign_change_price(m, t))
        ax.axvline(s_star, color=col, lw=0.8, ls=":",
                   label=f"S* = {s_star:.3f}: stock contribution < 0 below (t = {t:g} y)")
    t1 = times[-1]
    z = 2.326
    drift = (m.b - 0.5 * m.sigma**2) * t1
    ax.axvspan(float(np.exp(drift - z * m.sigma * np.sqrt(t1))),
               float(np.exp(drift + z * m.sigma * np.sqrt(t1))), color="tab:green", alpha=0.08,
               label=f"1%-99% range of S_t at t = {t1:g} y")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title("Against the stock's spot price (s0 = 1): the stock's contribution\nturns negative "
                 "below S* (after a crash), while the policy is long")
    ax.set_xlabel("stock price S_t (s0 = 1, log scale)")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)


def write_time_risk_figure(out: Path) -> str:
    """Write ``mean_variance_contributions.png`` (Zhou-Li market, default parameters) under ``out``
    and return its path and the sign-change prices as two printable lines (``drb time-risk``)."""
    m = ZhouLiMarket()
    path = plot_mean_variance_contributions(Path(out) / "mean_variance_contributions.png", m)
    stars = ", ".join(f"S*({t:g}) = {float(zhou_li_sign_change_price(m, t)):.4f}"
                      for t in (0.0, 0.25, 0.5, 0.75, 1.0))
    return f"{path}\nstock contribution < 0 below (s0 = 1): {stars}"
