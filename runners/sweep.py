"""Deprecated alias of :mod:`runners.experiments.sweep`, kept for one release."""

import sys

import runners.experiments.sweep as _module

sys.modules[__name__] = _module
