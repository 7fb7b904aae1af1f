"""Risk model and regime indicators.

Covariance estimators are classes with one interface (:class:`CovarianceEstimator`; the names
used in configs map to them once, in :data:`ESTIMATORS`); :class:`RiskModel` composes one.

Pure estimators (numpy / scipy / arch / pandas) are imported eagerly; the backtrader ``Indicator``
wrappers (:mod:`indicators.bt_indicators`) are imported lazily on first attribute access, so importing
the estimators never imports backtrader.
"""

from drb.lazy import lazy_exports
from indicators.covariance import (
    ESTIMATORS,
    METHODS,
    CovarianceEstimator,
    EGARCHDCCCovariance,
    EWMACovariance,
    LedoitWolfCovariance,
    SampleCovariance,
    covariance_path,
    ledoit_wolf_covariance,
    make_estimator,
    rolling_covariance,
    sample_covariance,
)
from indicators.dcc import DCCResult, dcc_correlation, dcc_step, fit_dcc
from indicators.egarch import (
    EGARCHFit,
    egarch_filter,
    egarch_fit,
    egarch_step,
    rolling_egarch_volatility,
)
from indicators.macro import (
    TRANSFORMS,
    MacroInputWarning,
    MacroSpec,
    nonstationary_columns,
    parse_macro_spec,
    prepare_macro,
    transform_macro,
)
from indicators.markov import (
    MarkovTransitionEstimator,
    expanding_transition_matrix,
    expanding_transition_rows,
    transition_matrix,
)
from indicators.regimes import (
    PHASES,
    REGIMES,
    VOL_STATES,
    CycleClassifier,
    VolatilityStateClassifier,
    align_to_days,
    classify_cycle,
    classify_volatility_state,
    composite_leading_indicator,
    daily_cycle_phase,
    price_proxy_cli,
    regime_id,
    regime_label,
)
from indicators.risk_model import RiskModel, rolling_risk_model
from indicators.triggers import (
    eigenvalue_change,
    eigenvalue_trigger,
    largest_eigenvalue,
    rc_deviation,
    rc_deviation_trigger,
    regime_change_points,
    regime_changed,
    relative_risk_contribution,
)

_BT = ("EGARCHVolatility", "RiskModelIndicator", "RegimeState", "MarkovTransition", "RiskContribution")

__all__ = [
    "METHODS", "ledoit_wolf_covariance", "rolling_covariance", "sample_covariance",
    "ESTIMATORS", "CovarianceEstimator", "EGARCHDCCCovariance", "EWMACovariance", "LedoitWolfCovariance",
    "SampleCovariance", "covariance_path", "make_estimator",
    "DCCResult", "dcc_correlation", "dcc_step", "fit_dcc",
    "EGARCHFit", "egarch_filter", "egarch_fit", "egarch_step", "rolling_egarch_volatility",
    "TRANSFORMS", "MacroInputWarning", "MacroSpec", "nonstationary_columns", "parse_macro_spec",
    "prepare_macro", "transform_macro",
    "MarkovTransitionEstimator", "expanding_transition_matrix", "expanding_transition_rows", "transition_matrix",
    "PHASES", "REGIMES", "VOL_STATES", "CycleClassifier", "VolatilityStateClassifier", "align_to_days",
    "classify_cycle", "classify_volatility_state", "composite_leading_indicator", "daily_cycle_phase",
    "price_proxy_cli", "regime_id", "regime_label",
    "RiskModel", "rolling_risk_model",
    "eigenvalue_change", "eigenvalue_trigger", "largest_eigenvalue", "rc_deviation", "rc_deviation_trigger",
    "regime_change_points", "regime_changed", "relative_risk_contribution",
    *_BT,
]  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, globals(), dict.fromkeys(_BT, "indicators.bt_indicators"))
