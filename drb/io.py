"""Atomic file writes for everything the runners put in a run directory.

Every writer here follows the same protocol: write the whole content to a temporary file in the
*same* folder as the target (so the final rename never crosses a file system), flush and
``fsync`` it, then ``os.replace`` it onto the target and ``fsync`` the folder. A reader therefore
sees either the previous complete file or the new complete file, never a torn one, even if the
process is killed half-way. On any error the temporary file is removed and the target is left
untouched.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_to_csv",
    "atomic_savefig",
]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permission bits of new files: what ``open()`` would give (0o666 minus the umask), not the
#: 0o600 of ``tempfile.mkstemp``.
_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(folder: Path) -> None:
    """Flush a directory entry to disk (best effort: not every platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        try:
            mode = os.stat(target).st_mode & 0o7777  # keep the mode of a file we replace
        except OSError:
            mode = _FILE_MODE
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    Parameters
    ----------
    path : str or PathLike
        Target file. Missing parent folders are created.
    data : bytes
        The complete file content.

    Returns
    -------
    pathlib.Path
        The target path.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    return _atomic_write(path, lambda fh: fh.write(bytes(data)))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; newlines are written as ``\\n`` on every platform.

    Parameters
    ----------
    path : str or PathLike
        Target file. Missing parent folders are created.
    text : str
        The complete file content.
    encoding : str, default "utf-8"
        Text encoding.

    Returns
    -------
    pathlib.Path
        The target path.
    """
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_to_csv(
    frame: pd.DataFrame | pd.Series, path: str | os.PathLike[str], **kwargs: Any
) -> Path:
    """Write a DataFrame or Series as CSV atomically.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
        Data to write.
    path : str or PathLike
        Target file. Missing parent folders are created.
    **kwargs
        Passed to :meth:`pandas.DataFrame.to_csv` (e.g. ``index=False``, ``float_format``).
        ``date_format`` defaults to ISO ``%Y-%m-%d`` only when given by the caller; pandas
        already writes midnight timestamps as ``YYYY-MM-DD``.

    Returns
    -------
    pathlib.Path
        The target path.
    """
    if "path_or_buf" in kwargs:
        raise TypeError("pass the target as `path`, not `path_or_buf`")
    kwargs.setdefault("lineterminator", "\n")
    buf = io.StringIO()
    frame.to_csv(buf, **kwargs)
    return atomic_write_text(path, buf.getvalue())


def atomic_savefig(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from ``kwargs['format']`` or the suffix).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save (any backend; rendering uses the figure's canvas).
    path : str or PathLike
        Target file. Missing parent folders are created.
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.savefig` (``dpi``, ``bbox_inches`` ...).

    Returns
    -------
    pathlib.Path
        The target path.
    """
    target = Path(path)
    kwargs.setdefault("format", target.suffix.lstrip(".").lower() or "png")
    buf = io.BytesIO()
    fig.savefig(buf, **kwargs)
    return atomic_write_bytes(target, buf.getvalue())
