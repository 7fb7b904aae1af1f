"""The two backtest engines side by side: :mod:`~runners.engine.cerebro` (backtrader's cerebro
with the strategies and recorders of :mod:`strategies.bt`, plus the strategy registry) and
:mod:`~runners.engine.fastpath` (the same allocators and execution model in a plain loop). Both
return a :class:`~runners.engine.cerebro.StrategyResult` with the record layouts of
:mod:`strategies.execution`."""
