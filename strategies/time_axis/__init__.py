"""Continuous-time risk contribution: risk budgeting on the time axis (pure numpy/scipy).

Source: [3] (docs/references.md; "Continuous-Time Risk Contribution of the Terminal Variance and its
Related Risk Budgeting Problem"), sections 2-4. The formulas in the source text are partly lost; what
is implemented here is re-derived and verified numerically (tests/test_time_axis*.py).

Conventions
-----------
* A *policy* is a process of positions ``theta_t`` held over ``(t, t + dt]``, chosen with information
  up to ``t`` (predictable). The investment is ``X_T = x0 + sum_t theta_t' dS_t`` (source eq. 6; the
  remainder sits in a zero-rate account).
* Positions and covariances must be in matching units: *shares* with the covariance of **price**
  increments, or *money* with the covariance of **returns** (``money_i = shares_i * S_i`` and
  ``cov_ret_ij = cov_price_ij / (S_i S_j)`` give identical contributions). Covariances are per unit of
  time (annualized when ``dt`` is in years); ``dt`` converts them to one step.

Risk contribution (Definition 14, Corollary 17)
----------------------------------------------
With ``dS_t = mu_t dt + sigma_t dW_t`` and ``Sigma_t = sigma_t sigma_t'``, the Gateaux derivative of
``Var(X_T)`` in the direction of a policy ``eta`` is ``2 Cov(int eta dS, X_T)``. Write the centred
martingale ``Y_t = E[X_T | F_t] - E[X_T] = int_0^t z_s' dW_s`` (martingale representation); then
``Cov(int eta dS, X_T) = E int eta_t' (mu_t Y_t + sigma_t z_t) dt`` and the density (the marginal risk
contribution process) is ``m_t = mu_t Y_t + sigma_t z_t``. The contribution of asset ``i`` at time ``t``
is ``c_{i,t} = theta_{i,t} m_{i,t} dt`` and ``E[sum_{i,t} c_{i,t}] = Var(X_T)`` (aggregation property).
Under the reference (martingale) measure ``mu = 0``, ``X`` is itself a martingale, ``z_t = sigma_t'
theta_t``, ``m_t = Sigma_t theta_t`` and ``c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i dt``: that is what
:func:`time_risk_contributions` computes for a realized policy with ex-ante covariances (its row sums
are ``theta_t' Sigma_t theta_t dt`` exactly). With drift and a feedback policy, ``z_t`` differs from
``sigma_t' theta_t`` and the drift term ``mu_t Y_t`` is not zero: :func:`mean_variance_contributions`
uses the full density (``z_t`` in closed form for the Zhou-Li policy).

Time-axis risk parity (section 4.1)
-----------------------------------
Budgeting ``min 0.5 Var(X_T) - E int b_t log(theta_t) dt`` gives ``theta_t m_t = b_t`` (Theorem 19).
For one risky asset with return volatility ``sigma_t`` and money position ``pi_t`` the contribution
density is ``pi_t^2 sigma_t^2``: a *constant* budget ``b`` (equal contributions per unit of time) is met
by ``pi_t = sqrt(b) / sigma_t``, i.e. the weight ``w_t = target_vol / sigma_t`` (volatility targeting).
The Moreira-Muir rule ``w_t = c / sigma_t^2`` meets the budget ``b_t = c^2 / sigma_t^2`` (high budget
when volatility is low; the source's "amplifier" of eq. 24). The source calls it the solution of a
*regularized* risk-parity budget (the regularization is lost from the text; whatever it is, it must
amount to the budget ``c^2 / sigma_t^2`` in money, or weight, units to give ``c / sigma^2``); in the
sense of equal contributions per unit of time, which is what is measured here, it is a time-axis risk
*budget* that favours calm periods, and parity is volatility targeting. Both are provided and verified; see
:func:`time_parity_weight` and :func:`moreira_muir_weight`.
"""


from __future__ import annotations

from strategies.time_axis.contributions import (
    TimeConcentration,
    bucket_contributions,
    bucket_shares,
    effective_number,
    ewma_covariances,
    herfindahl,
    time_concentration,
    time_risk_contributions,
    total_variance,
)
from strategies.time_axis.mean_variance import (
    ZhouLiMarket,
    mean_variance_contributions,
    mean_variance_expected_contributions,
    zhou_li_mc_policy,
    zhou_li_policy,
    zhou_li_sign_change_price,
    zhou_li_wealth_at_price,
)
from strategies.time_axis.policies import (
    buy_and_hold_policy,
    moreira_muir_constant,
    moreira_muir_policy,
    moreira_muir_weight,
    time_parity_weight,
    volatility_managed_policy,
)
from strategies.time_axis.projection import (
    ProjectionDemo,
    batch_risk_budget_positions,
    projection_demo,
    risk_budget_positions,
)
from strategies.time_axis.simulation import (
    GBM,
    SABR,
    AggregationTest,
    MCTimeRiskResult,
    Policy,
    PolicyState,
    normal_interval,
    simulate_time_risk,
)

__all__ = [
    "time_risk_contributions",
    "total_variance",
    "bucket_contributions",
    "bucket_shares",
    "herfindahl",
    "effective_number",
    "TimeConcentration",
    "time_concentration",
    "ewma_covariances",
    "GBM",
    "SABR",
    "PolicyState",
    "Policy",
    "MCTimeRiskResult",
    "AggregationTest",
    "normal_interval",
    "simulate_time_risk",
    "time_parity_weight",
    "moreira_muir_weight",
    "moreira_muir_constant",
    "buy_and_hold_policy",
    "volatility_managed_policy",
    "moreira_muir_policy",
    "ZhouLiMarket",
    "zhou_li_policy",
    "mean_variance_contributions",
    "mean_variance_expected_contributions",
    "zhou_li_mc_policy",
    "zhou_li_wealth_at_price",
    "zhou_li_sign_change_price",
    "risk_budget_positions",
    "batch_risk_budget_positions",
    "ProjectionDemo",
    "projection_demo",
]
