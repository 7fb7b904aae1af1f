"""Deprecated alias of :mod:`runners.report.evidence`, kept for one release."""

from runners.report.evidence import *  # noqa: F403
from runners.report.evidence import __all__  # noqa: F401
