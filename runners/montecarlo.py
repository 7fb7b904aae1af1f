"""Deprecated alias of :mod:`runners.experiments.montecarlo`, kept for one release."""

import sys

import runners.experiments.montecarlo as _module

sys.modules[__name__] = _module
