"""Deprecated alias of :mod:`runners.engine.fastpath`, kept for one release."""

from runners.engine.fastpath import make_allocator, run_fast

__all__ = ["make_allocator", "run_fast"]
