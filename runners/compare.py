"""Deprecated alias of :mod:`runners.experiments.compare`, kept for one release."""

import sys

import runners.experiments.compare as _module

sys.modules[__name__] = _module
