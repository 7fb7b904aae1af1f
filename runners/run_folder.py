"""Deprecated alias of :mod:`runners.rundir`, kept for one release."""

from runners.rundir import (  # noqa: F401
    RESUMABLE_OUTPUTS,
    RUN_FOLDER_ENTRIES,
    _alive,
    check_target,
    clean_leftovers,
    make_staging,
    prepare_resumable,
    swap_in,
)

__all__ = ["RUN_FOLDER_ENTRIES", "check_target", "clean_leftovers", "make_staging", "swap_in"]
