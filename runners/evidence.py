"""Deprecated alias of :mod:`runners.experiments.evidence`, kept for one release."""

import sys

import runners.experiments.evidence as _module

sys.modules[__name__] = _module
