"""The backtrader adapters: :mod:`~strategies.bt.strategies` (the ``Strategy`` classes that drive
the pure allocators) and :mod:`~strategies.bt.analyzers` (the recorders). The only modules of
:mod:`strategies` that import backtrader; this package ``__init__`` imports nothing."""
