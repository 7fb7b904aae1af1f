"""Deprecated alias of :mod:`runners.report.figures`, kept for one release."""

from runners.report.figures import *  # noqa: F403
from runners.report.figures import __all__  # noqa: F401
