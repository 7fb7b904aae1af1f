"""Deprecated alias of :mod:`runners.report.tables`, kept for one release."""

from runners.report.tables import *  # noqa: F403
from runners.report.tables import __all__  # noqa: F401
