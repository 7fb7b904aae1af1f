"""Deprecated alias of :mod:`drb.io` (atomic file writes), kept for one release."""

from drb.io import (  # noqa: F401
    atomic_savefig,
    atomic_to_csv,
    atomic_write_bytes,
    atomic_write_text,
)
