"""Deprecated alias of :mod:`runners.experiments.evidence_outputs`, kept for one release."""

import sys

import runners.experiments.evidence_outputs as _module

sys.modules[__name__] = _module
