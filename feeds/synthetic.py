"""The embedded default market: a seeded, regime-switching four-asset market with signals.

The generator is the project's stand-in for the paper's Chinese data (CSI 300, China bond composite,
Nanhua commodity and CSI real-estate indexes, 2018-2025), used by ``drb demo``, the tests, the
benchmarks and the Monte Carlo paths. It is built to behave like real markets where the model cares:

* **Persistent regimes.** The economic phase is a monthly Markov chain that moves through the cycle
  recovery -> expansion -> deceleration -> recession -> recovery (mean durations in
  :data:`PHASE_DURATION_MONTHS`); the volatility state low/medium/high is a daily Markov chain whose
  transition matrix depends on the phase (recessions are more often volatile). Together they form a
  Markov chain over the 4 x 3 regimes.
* **Volatility clustering and fat tails within regimes.** Each asset's variance is the regime's target level
  times a unit-mean GJR-GARCH(1,1) factor, driven by multivariate Student-t shocks
  (5 degrees of freedom, common mixing variable, so tails are jointly heavy).
* **A stock-bond correlation that turns negative in high-volatility states** (flight to quality), and
  equity / real-estate correlation that rises in stress.
* **An implied-volatility index that tracks and leads realized equity volatility**: it prices the
  expected equity variance over the next month from the GARCH state and the volatility states of
  the next month (the market anticipates regime shifts better than a model can), times a variance risk premium, with its own persistent log-noise.
* **Leading indicators that lead the phase with noise**: eight monthly series loading on a latent
  output-gap path (below trend and rising in recovery, above and rising in expansion, above and
  falling in deceleration, below and falling in recession), shifted ``MACRO_LEAD_MONTHS`` ahead, with
  AR(1) noise; two of them are counter-cyclical. They start five years before the prices, as real
  macro history does, and are indexed by the first day of the reference month (not the release
  date: the publication lag is applied by the regime classifier).

Calibration (annualized; daily data, unconditional, see :data:`ASSET_PARAMS`): volatilities of 22% for
the CSI 300, 1.8% for the China bond composite (a total-return index of mostly government and policy
bank bonds), 17% for the Nanhua commodity index and 29% for the CSI real-estate index; correlations
equity/real estate 0.75, equity/commodity 0.30, commodity/real estate 0.25, bond/risky -0.1 on
average (about +0.05 in calm states and -0.35 in high-volatility states). These are round figures for
2010-2024 daily returns of those indexes as commonly reported in index factsheets and the Chinese
risk-parity literature; they are typical values, not a fit to any one sample. Drifts by phase give an
unconditional equity return near 7% and a bond return near 3.5% per year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.constants import PERIODS_PER_YEAR
from drb.errors import ConfigError

__all__ = [
    "ASSETS",
    "PHASES",
    "VOL_STATES",
    "ASSET_PARAMS",
    "PHASE_DURATION_MONTHS",
    "MACRO_LEAD_MONTHS",
    "SyntheticMarket",
    "synthetic_market",
]

ASSETS: tuple[str, ...] = ("equity", "bond", "commodity", "real_estate")
PHASES: tuple[str, ...] = ("recovery", "expansion", "deceleration", "recession")
VOL_STATES: tuple[str, ...] = ("low", "medium", "high")


#: Per-asset calibration: unconditional annual volatility, GJR-GARCH(1,1) parameters (alpha, gamma,
#: beta), volatility multipliers per volatility state (low, medium, high, before normalization so the
#: unconditional volatility equals ``vol``), starting level, and annual drift per phase
#: (recovery, expansion, deceleration, recession).
ASSET_PARAMS: dict[str, dict[str, Any]] = {
    "equity": {
        "vol": 0.22,
        "garch": (0.04, 0.06, 0.90),
        "state_mult": (0.70, 1.00, 1.75),
        "start": 4000.0,
        "drift": (0.22, 0.12, -0.02, -0.14),
    },
    "bond": {
        "vol": 0.018,
        "garch": (0.06, 0.00, 0.91),
        "state_mult": (0.90, 1.00, 1.30),
        "start": 180.0,
        "drift": (0.025, 0.020, 0.040, 0.060),
    },
    "commodity": {
        "vol": 0.17,
        "garch": (0.05, 0.02, 0.91),
        "state_mult": (0.75, 1.00, 1.55),
        "start": 1500.0,
        "drift": (0.06, 0.14, 0.02, -0.12),
    },
    "real_estate": {
        "vol": 0.29,
        "garch": (0.04, 0.06, 0.90),
        "state_mult": (0.70, 1.00, 1.75),
        "start": 8000.0,
        "drift": (0.18, 0.10, -0.06, -0.18),
    },
}

#: Correlation matrices per volatility state, order of :data:`ASSETS`.
CORRELATIONS: dict[str, np.ndarray] = {
    "low": np.array(
        [
            [1.00, 0.05, 0.25, 0.70],
            [0.05, 1.00, -0.05, 0.05],
            [0.25, -0.05, 1.00, 0.20],
            [0.70, 0.05, 0.20, 1.00],
        ]
    ),
    "medium": np.array(
        [
            [1.00, -0.10, 0.30, 0.75],
            [-0.10, 1.00, -0.10, -0.08],
            [0.30, -0.10, 1.00, 0.25],
            [0.75, -0.08, 0.25, 1.00],
        ]
    ),
    "high": np.array(
        [
            [1.00, -0.35, 0.40, 0.82],
            [-0.35, 1.00, -0.20, -0.30],
            [0.40, -0.20, 1.00, 0.35],
            [0.82, -0.30, 0.35, 1.00],
        ]
    ),
}

#: Mean duration of each phase in months (monthly chain: stay with probability 1 - 1/duration,
#: else move to the next phase of the cycle).
PHASE_DURATION_MONTHS: dict[str, float] = {
    "recovery": 8.0,
    "expansion": 14.0,
    "deceleration": 9.0,
    "recession": 8.0,
}

#: Daily volatility-state transition matrices per phase (rows: from low/medium/high).
VOL_TRANSITIONS: dict[str, np.ndarray] = {
    "recovery": np.array([[0.985, 0.014, 0.001], [0.020, 0.970, 0.010], [0.010, 0.040, 0.950]]),
    "expansion": np.array([[0.988, 0.011, 0.001], [0.025, 0.967, 0.008], [0.015, 0.045, 0.940]]),
    "deceleration": np.array([[0.975, 0.022, 0.003], [0.012, 0.970, 0.018], [0.005, 0.030, 0.965]]),
    "recession": np.array([[0.960, 0.032, 0.008], [0.008, 0.962, 0.030], [0.003, 0.022, 0.975]]),
}

#: Leading indicators: name, loading on the latent output gap (negative = counter-cyclical),
#: level, scale, AR(1) noise coefficient and noise standard deviation (in units of ``scale``).
MACRO_INDICATORS: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("pmi_new_orders", 1.00, 50.0, 2.5, 0.5, 0.45),
    ("pmi_manufacturing", 0.90, 50.0, 1.8, 0.5, 0.50),
    ("industrial_value_added", 0.80, 6.0, 2.0, 0.4, 0.55),
    ("credit_impulse", 0.85, 0.0, 1.5, 0.6, 0.55),
    ("m1_m2_gap", 0.70, -2.0, 4.0, 0.6, 0.65),
    ("yield_curve_slope", 0.60, 0.8, 0.5, 0.7, 0.70),
    ("export_orders", 0.75, 48.0, 3.0, 0.5, 0.60),
    ("initial_claims_index", -0.70, 100.0, 6.0, 0.5, 0.65),
)

#: The indicators' own ``[macro]`` table: stationary by construction (AR(1) around a level), the
#: claims index counter-cyclical. Carried in ``macro.attrs`` so the dynamic model needs no table.
SYNTHETIC_MACRO_TRANSFORMS: dict[str, str] = {
    name: ("-level" if load < 0 else "level") for name, load, *_ in MACRO_INDICATORS
}

#: How many months the indicators lead the latent cycle.
MACRO_LEAD_MONTHS = 3
#: Months of macro history generated before the first price date.
MACRO_HISTORY_MONTHS = 60
#: Student-t degrees of freedom of the return shocks.
T_DOF = 5.0
#: Variance risk premium of the implied-volatility index (ratio of implied to expected vol).
VOL_PREMIUM = 1.12
#: How many business days ahead the implied-vol index sees the volatility state.
VOL_INDEX_LEAD_DAYS = 21


@dataclass(frozen=True)
class SyntheticMarket:
    """A simulated market with its true regime labels.

    Attributes
    ----------
    prices : DataFrame, shape (T, 4)
        Business-day total-return levels, columns ``equity, bond, commodity, real_estate``.
    vol_index : Series, shape (T,)
        Daily implied-volatility index (annualized, in percent, like VIX/iVIX).
    macro : DataFrame, shape (M, 8)
        Monthly leading indicators indexed by the first day of the reference month, starting
        ``MACRO_HISTORY_MONTHS`` before the prices. Apply a publication lag before use.
    phase : Series, shape (T,)
        True economic phase of each business day.
    vol_state : Series, shape (T,)
        True volatility state of each business day.
    seed : int
        The seed that produced it.
    params : dict
        The calibration used (JSON-serializable).
    """

    prices: pd.DataFrame
    vol_index: pd.Series
    macro: pd.DataFrame
    phase: pd.Series
    vol_state: pd.Series
    seed: int
    params: dict[str, Any] = field(repr=False)

    @property
    def regime(self) -> pd.Series:
        """True regime label ``"phase/vol_state"`` of each business day."""
        return (self.phase + "/" + self.vol_state).rename("regime")

    @property
    def returns(self) -> pd.DataFrame:
        """Daily simple returns of :attr:`prices` (first row dropped)."""
        return self.prices.pct_change().iloc[1:]

    def to_csv(self, folder: str | Path) -> dict[str, Path]:
        """Write ``prices.csv``, ``vol_index.csv`` and ``macro.csv`` (loader formats) to ``folder``.

        Returns
        -------
        dict
            ``{"prices": path, "vol_index": path, "macro": path}``.
        """
        from drb.io import atomic_to_csv

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {
            "prices": folder / "prices.csv",
            "vol_index": folder / "vol_index.csv",
            "macro": folder / "macro.csv",
        }
        atomic_to_csv(self.prices.rename_axis("date"), out["prices"], float_format="%.6f")
        atomic_to_csv(
            self.vol_index.rename("vol_index").rename_axis("date").to_frame(),
            out["vol_index"],
            float_format="%.4f",
        )
        atomic_to_csv(self.macro.rename_axis("date"), out["macro"], float_format="%.4f")
        return out


def _month_starts(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.date_range(start.to_period("M").to_timestamp(), end, freq="MS")


def _simulate_phases(rng: np.random.Generator, n_months: int) -> np.ndarray:
    """Monthly phase indices (0..3) of a persistent cyclical Markov chain."""
    stay = np.array([1.0 - 1.0 / PHASE_DURATION_MONTHS[p] for p in PHASES])
    # Start from the chain's stationary distribution (proportional to mean durations).
    dur = np.array([PHASE_DURATION_MONTHS[p] for p in PHASES])
    phase = np.empty(n_months, dtype=np.int64)
    phase[0] = rng.choice(4, p=dur / dur.sum())
    u = rng.random(n_months)
    for m in range(1, n_months):
        phase[m] = phase[m - 1] if u[m] < stay[phase[m - 1]] else (phase[m - 1] + 1) % 4
    return phase


def _output_gap(phase: np.ndarray) -> np.ndarray:
    """Latent output gap path consistent with the phases (level vs trend and its direction).

    Within each phase episode the gap moves linearly with the progress u in (0, 1]:
    recovery -1+u, expansion u, deceleration 1-u, recession -u; so recovery is below trend and rising,
    expansion above and rising, deceleration above and falling, recession below and falling.
    """
    gap = np.empty(phase.size)
    start = 0
    while start < phase.size:
        stop = start
        while stop < phase.size and phase[stop] == phase[start]:
            stop += 1
        length = stop - start
        u = (np.arange(1, length + 1) - 0.5) / length
        gap[start:stop] = {0: -1.0 + u, 1: u, 2: 1.0 - u, 3: -u}[int(phase[start])]
        start = stop
    return gap


def _stationary(p: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eig(p.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return v / v.sum()


def synthetic_market(
    seed: int = 0,
    start: str | pd.Timestamp = "2018-01-02",
    end: str | pd.Timestamp = "2025-06-30",
) -> SyntheticMarket:
    """Simulate the embedded default market (deterministic per seed).

    Parameters
    ----------
    seed : int
        Seed of the numpy random generator; the same seed gives identical output.
    start, end : str or Timestamp
        First and last calendar day; prices are on business days in between.

    Returns
    -------
    SyntheticMarket
        Prices, implied-volatility index, monthly leading indicators and the true daily labels.

    Examples
    --------
    >>> m = synthetic_market(seed=0)
    >>> list(m.prices.columns)
    ['equity', 'bond', 'commodity', 'real_estate']
    """
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    if end_ts <= start_ts:
        raise ConfigError(f"synthetic_market: end {end_ts.date()} is not after start {start_ts.date()}")
    dates = pd.bdate_range(start_ts, end_ts)
    if len(dates) < 30:
        raise ConfigError(f"synthetic_market: span {start_ts.date()}..{end_ts.date()} has under 30 business days")
    rng = np.random.default_rng(seed)
    # The draws happen in a fixed order (phases, volatility states, shocks, index noise, indicators):
    # the same seed gives the same market.
    price_months = _month_starts(start_ts, end_ts)
    hist_start = price_months[0] - pd.DateOffset(months=MACRO_HISTORY_MONTHS)
    all_months = pd.date_range(hist_start, price_months[-1] + pd.DateOffset(months=MACRO_LEAD_MONTHS), freq="MS")
    month_phase = _simulate_phases(rng, len(all_months))
    month_pos = pd.Series(np.arange(len(all_months)), index=all_months)
    day_phase = month_phase[month_pos.reindex(dates.to_period("M").to_timestamp()).to_numpy()]
    vol_state = _simulate_vol_states(rng, day_phase)
    paths = _simulate_returns(rng, day_phase, vol_state)
    levels = np.array([ASSET_PARAMS[a]["start"] for a in ASSETS]) * np.exp(np.cumsum(paths.returns, axis=0))
    prices = pd.DataFrame(levels, index=dates, columns=list(ASSETS))
    prices.index.name = "date"
    vol_index = pd.Series(_vol_index_level(rng, paths, vol_state), index=dates, name="vol_index")
    macro = _leading_indicators(rng, all_months, _output_gap(month_phase)).loc[: price_months[-1]]
    macro.index.name = "date"
    macro.attrs["macro_transforms"] = dict(SYNTHETIC_MACRO_TRANSFORMS)
    phase_s = pd.Series(np.asarray(PHASES, dtype=object)[day_phase], index=dates, name="phase")
    state_s = pd.Series(np.asarray(VOL_STATES, dtype=object)[vol_state], index=dates, name="vol_state")
    return SyntheticMarket(
        prices=prices,
        vol_index=vol_index,
        macro=macro,
        phase=phase_s,
        vol_state=state_s,
        seed=int(seed),
        params=_calibration_record(),
    )


def _simulate_vol_states(rng: np.random.Generator, day_phase: np.ndarray) -> np.ndarray:
    """Daily volatility states (0 calm, 1 normal, 2 stressed; shape (T,)) of the phase-dependent chains."""
    n_days = day_phase.shape[0]
    vol_state = np.empty(n_days, dtype=np.int64)
    p0 = _stationary(VOL_TRANSITIONS[PHASES[day_phase[0]]])
    vol_state[0] = rng.choice(3, p=p0)
    u = rng.random(n_days)
    cum = {p: np.cumsum(VOL_TRANSITIONS[p], axis=1) for p in PHASES}
    for t in range(1, n_days):
        row = cum[PHASES[day_phase[t]]][vol_state[t - 1]]
        vol_state[t] = min(int(np.searchsorted(row, u[t], side="right")), 2)
    return vol_state


@dataclass(frozen=True)
class _ReturnPaths:
    """Simulated daily log returns and what the implied-volatility index needs of them."""

    returns: np.ndarray  # (T, n) log returns, row 0 = 0 (the base date)
    cond_var: np.ndarray  # (T, n) conditional daily variances
    daily_target: np.ndarray  # (n, 3) regime-targeted daily variance per volatility state
    persistence: np.ndarray  # (n,) GJR-GARCH persistence alpha + gamma / 2 + beta


def _regime_targets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-asset daily target variances (n, 3), drifts (n, 4) and GJR-GARCH parameters (n, 3).

    The state multipliers are normalized so that the unconditional volatility matches the
    calibration, using the average stationary distribution of the volatility chain over phases
    weighted by phase durations.
    """
    n_assets = len(ASSETS)
    dur = np.array([PHASE_DURATION_MONTHS[p] for p in PHASES])
    pi_state = sum(d * _stationary(VOL_TRANSITIONS[p]) for d, p in zip(dur, PHASES)) / dur.sum()
    daily_target = np.empty((n_assets, 3))
    drift = np.empty((n_assets, 4))
    garch = np.empty((n_assets, 3))
    for i, a in enumerate(ASSETS):
        par = ASSET_PARAMS[a]
        mult = np.asarray(par["state_mult"])
        norm = np.sqrt(float(pi_state @ mult**2))
        daily_target[i] = (par["vol"] * mult / norm) ** 2 / PERIODS_PER_YEAR
        drift[i] = np.asarray(par["drift"]) / PERIODS_PER_YEAR
        garch[i] = par["garch"]
    return daily_target, drift, garch


def _simulate_returns(
    rng: np.random.Generator, day_phase: np.ndarray, vol_state: np.ndarray
) -> _ReturnPaths:
    """GJR-GARCH returns with regime-targeted variance and multivariate t shocks."""
    n_days, n_assets = day_phase.shape[0], len(ASSETS)
    daily_target, drift, garch = _regime_targets()
    chol = {s: np.linalg.cholesky(CORRELATIONS[s]) for s in VOL_STATES}
    z = rng.standard_normal((n_days, n_assets))
    mix = rng.chisquare(T_DOF, size=n_days)
    tscale = np.sqrt((T_DOF - 2.0) / mix)  # unit-variance multivariate t
    alpha, gamma, beta = garch[:, 0], garch[:, 1], garch[:, 2]
    persistence = alpha + 0.5 * gamma + beta
    # Unit-mean GJR-GARCH(1,1) factor g_t on the standardized shocks: clustering within a regime,
    # while the regime's target variance switches instantly with the volatility state.
    g = np.ones(n_assets)
    rets = np.empty((n_days, n_assets))
    cond_var = np.empty((n_days, n_assets))
    prev_u = np.zeros(n_assets)
    for t in range(n_days):
        target = daily_target[:, vol_state[t]]
        if t > 0:
            g = (1.0 - persistence) + (alpha + gamma * (prev_u < 0)) * prev_u**2 + beta * g
        h = target * g
        cond_var[t] = h
        shock = (chol[VOL_STATES[vol_state[t]]] @ z[t]) * tscale[t]
        # Log-return drift adjusted so the expected simple return matches the phase drift.
        rets[t] = drift[:, day_phase[t]] - 0.5 * h + np.sqrt(h) * shock
        prev_u = np.sqrt(g) * shock
    rets[0] = 0.0  # the first day is the base date
    return _ReturnPaths(rets, cond_var, daily_target, persistence)


def _vol_index_level(
    rng: np.random.Generator, paths: _ReturnPaths, vol_state: np.ndarray
) -> np.ndarray:
    """Implied-volatility index level (annualized percent, shape (T,)) of the equity asset.

    The market sees the volatility state up to VOL_INDEX_LEAD_DAYS ahead (its information set is
    larger than a model's): the regime variance is averaged over those days, and the expected
    average variance over the next month reverts from the GARCH state to that level.
    """
    n_days, horizon = vol_state.shape[0], 21
    cond_var, daily_target = paths.cond_var, paths.daily_target
    ahead = np.minimum(np.arange(n_days)[:, None] + np.arange(1, VOL_INDEX_LEAD_DAYS + 1), n_days - 1)
    target_ahead = daily_target[0, vol_state[ahead]].mean(axis=1)
    decay = (paths.persistence[0] ** np.arange(1, horizon + 1)).mean()
    next_g = np.r_[cond_var[1:, 0], cond_var[-1, 0]] / daily_target[0, np.r_[vol_state[1:], vol_state[-1]]]
    exp_var = target_ahead * (1.0 + (next_g - 1.0) * decay)
    noise = np.empty(n_days)
    e = rng.standard_normal(n_days) * 0.05
    noise[0] = e[0] / np.sqrt(1 - 0.9**2)
    for t in range(1, n_days):
        noise[t] = 0.9 * noise[t - 1] + e[t]
    return 100.0 * VOL_PREMIUM * np.sqrt(exp_var * PERIODS_PER_YEAR) * np.exp(noise)


def _leading_indicators(
    rng: np.random.Generator, all_months: pd.DatetimeIndex, gap: np.ndarray
) -> pd.DataFrame:
    """Monthly leading indicators: the output gap MACRO_LEAD_MONTHS ahead plus AR(1) noise."""
    n_m = len(all_months) - MACRO_LEAD_MONTHS
    lead_gap = gap[MACRO_LEAD_MONTHS : MACRO_LEAD_MONTHS + n_m]
    cols = {}
    for name, load, level, scale, ar, sd in MACRO_INDICATORS:
        eps_m = rng.standard_normal(n_m) * sd
        nz = np.empty(n_m)
        nz[0] = eps_m[0] / np.sqrt(1 - ar**2)
        for m in range(1, n_m):
            nz[m] = ar * nz[m - 1] + eps_m[m]
        cols[name] = level + scale * (load * lead_gap + nz)
    return pd.DataFrame(cols, index=all_months[:n_m])


def _calibration_record() -> dict[str, Any]:
    """The market's calibration as plain JSON-able data (``SyntheticMarket.params``)."""
    return {
        "assets": list(ASSETS),
        "asset_params": {a: {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()} for a, p in ASSET_PARAMS.items()},
        "correlations": {s: c.tolist() for s, c in CORRELATIONS.items()},
        "phase_duration_months": dict(PHASE_DURATION_MONTHS),
        "vol_transitions": {p: m.tolist() for p, m in VOL_TRANSITIONS.items()},
        "macro_lead_months": MACRO_LEAD_MONTHS,
        "t_dof": T_DOF,
        "vol_premium": VOL_PREMIUM,
        "vol_index_lead_days": VOL_INDEX_LEAD_DAYS,
    }
