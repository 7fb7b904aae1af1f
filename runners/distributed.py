"""Deprecated alias of :mod:`runners.parallel`, kept for one release."""

import sys

import runners.parallel as _module

sys.modules[__name__] = _module
