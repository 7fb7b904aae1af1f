"""strategies.core: the allocation math, pure numpy/scipy/numba (no backtrader, no runners).

- :mod:`strategies.core.validation`: input checks shared by every function below.
- :mod:`strategies.core.risk`: Euler risk decomposition of portfolio volatility.
- :mod:`strategies.core.kernels`: the numba kernels of the risk-budget solver, each with its
  pure-Python twin ``<name>_py``.
- :mod:`strategies.core.solvers`: risk-budget solvers (Newton, Newton-CG, coordinate descent,
  bounds, the Sharpe band).
- :mod:`strategies.core.weights`: baseline weight rules.
- :mod:`strategies.core.turnover`: turnover and the turnover-cap projection.
- :mod:`strategies.core.budget`: regime budget matrix, tilts and smoothing.

The package imports no submodule itself, so ``import strategies.core.risk`` loads only what it needs.
"""
