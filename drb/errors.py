"""Typed exceptions and warnings shared by every layer (no heavy imports here)."""

from __future__ import annotations


class DRBError(Exception):
    """Base class of every error raised by this package."""


class DataError(DRBError, ValueError):
    """Bad input data: names the file, column and first bad row where known."""


class ConfigError(DRBError, ValueError):
    """Bad configuration: names the key and the offending value."""


class SolverError(DRBError, RuntimeError):
    """An allocation solver could not produce a valid answer."""


class EstimationError(DRBError, RuntimeError):
    """A risk or regime estimator could not produce a valid estimate."""


class StateError(DRBError, RuntimeError):
    """Paper-trading state is missing, corrupt, truncated or of another version."""


class DRBWarning(UserWarning):
    """Base class of every warning emitted by this package."""


class DataWarning(DRBWarning):
    """Input data was usable after a documented normalization (sorted, columns ignored...)."""


class CovarianceRepairWarning(DRBWarning):
    """A covariance matrix was not positive definite and was repaired."""


class SolverFallbackWarning(DRBWarning):
    """A solver failed and a documented fallback produced the answer."""


class SignalFallbackWarning(DRBWarning):
    """An optional signal is missing and a documented stand-in is used."""


class EstimationWarning(DRBWarning):
    """An estimator fit failed or did not converge; previous parameters were kept."""
