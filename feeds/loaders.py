"""Loading and validating user data: prices, an implied-volatility index and monthly macro indicators.

Every loader accepts a path (``.csv``, ``.csv.gz``, ``.parquet``/``.pq``) or a DataFrame/Series and
returns clean pandas objects indexed by a ``DatetimeIndex`` named ``date``. Every rejection is a
:class:`drb.errors.DataError` with one line naming the source (file or "DataFrame"), the column and the
first bad row (file line number for files, row position for in-memory frames) with its date.
"""

from __future__ import annotations

import csv
import gzip
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from drb.errors import DataError, DataWarning
from drb.names import did_you_mean

__all__ = ["load_prices", "load_vol_index", "load_macro", "read_table"]

Source = str | Path | pd.DataFrame | pd.Series

_PARQUET = (".parquet", ".pq")


def _label(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


#: Delimiters tried on CSV files, in order of preference.
_DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
#: What a column name in a delimited header looks like (a ticker, an indicator name...).
_HEADER_NAME = re.compile(r"^[^\W\d][\w .%&/()+^\-]{0,63}$")
_NUMBER = re.compile(r"^$|^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?$|^(?i:nan|inf|-inf|na|null)$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_SNIFF_BYTES = 65536


def _head_lines(path: Path, gz: bool, label: str) -> list[str]:
    """The first non-blank lines of a text file (at most 64 KiB), without interpreting them."""
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        else:
            with path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES)
    except (OSError, EOFError):
        raise DataError(f"{label}: not a readable gzip file, expected a gzipped CSV") from None
    if b"\x00" in head:
        raise DataError(f"{label}: binary content, expected a CSV text file")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 64 KiB boundary
            raise DataError(f"{label}: binary or non-UTF-8 content, expected a CSV text file") from None
        text = head[: exc.start].decode("utf-8-sig")
    lines = text.splitlines()
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [ln for ln in lines if ln.strip()]


def _sniff_delimiter(lines: list[str]) -> tuple[str, list[str]]:
    """The delimiter that splits the header into most fields consistently, and the header fields.

    Preference: a header with a ``date`` field, then the most rows as wide as the header, then the
    widest header. Falls back to ``","`` when nothing splits the header.
    """
    best: tuple[tuple[bool, int, int], str, list[str]] | None = None
    sample = lines[:50]
    for delim in _DELIMITERS:
        rows = list(csv.reader(sample, delimiter=delim))
        header = [f.strip() for f in rows[0]]
        if len(header) < 2:
            continue
        has_date = any(f.lower() == "date" for f in header)
        matching = sum(len(r) == len(header) for r in rows[1:])
        score = (has_date, matching, len(header))
        if best is None or score > best[0]:
            best = (score, delim, header)
    if best is None:
        return ",", [lines[0].strip()]
    return best[1], best[2]


def _looks_like_data(header: list[str], rows: list[str], delim: str) -> bool:
    """A header of names followed by a row as wide whose values (after the first) are numbers."""
    # an unnamed first column (a written index) is the only blank name allowed
    names = len(header) >= 2 and all(_HEADER_NAME.match(f) for f in header[1:])
    if not names or not (header[0] == "" or _HEADER_NAME.match(header[0])):
        return False
    for row in csv.reader(rows[:5], delimiter=delim):
        if len(row) == len(header) and all(_NUMBER.match(c.strip()) for c in row[1:]):
            return True
    return False


def _check_csv_header(path: Path, gz: bool, label: str) -> tuple[str, str]:
    """Validate the header of a CSV file; return ``(delimiter, decimal mark)``.

    Messages never quote the file's content unless its first line is a delimited header of names
    (then the names are listed): a file of another kind only gets "not a CSV with a 'date' column".
    """
    lines = _head_lines(path, gz, label)
    if not lines:
        raise DataError(f"{label}: file is empty")
    delim, header = _sniff_delimiter(lines)
    if not any(f.lower() == "date" for f in header):
        if not _looks_like_data(header, lines[1:], delim):
            raise DataError(f"{label}: not a CSV with a 'date' column")
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise DataError(f"{label}: no 'date' column (columns: {shown})")
    decimal = "."
    if delim != ",":
        cells = [c.strip() for row in csv.reader(lines[1:50], delimiter=delim) for c in row[1:]]
        if any(_DECIMAL_COMMA.match(c) for c in cells):
            decimal = ","
    return delim, decimal


def _read_file(path: Path, label: str) -> tuple[pd.DataFrame, int]:
    suffixes = "".join(path.suffixes).lower()
    if path.suffix.lower() in _PARQUET:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for unreadable files
            raise DataError(f"{label}: cannot be read as a Parquet file ({type(exc).__name__})") from None
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis("date").reset_index()
        else:
            frame = frame.reset_index(drop=True)
        return frame, 0
    gz = suffixes.endswith(".gz")
    delim, decimal = _check_csv_header(path, gz, label)
    try:
        frame = pd.read_csv(path, sep=delim, decimal=decimal, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty") from None
    except UnicodeDecodeError:
        raise DataError(f"{label}: binary or non-UTF-8 content, expected a CSV text file") from None
    except Exception as exc:  # pandas raises many types; their messages may quote the file
        line = re.search(r"line (\d+)", str(exc))
        where = f"wrong number of fields at line {line.group(1)}" if line else type(exc).__name__
        raise DataError(f"{label}: cannot be read as a CSV table ({where})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, 2


def read_table(source: Source, *, name: str | None = None) -> tuple[pd.DataFrame, str, int]:
    """Read a table from a path or a frame; check only that a file is a table with a ``date`` column.

    CSV files may be separated by ``,``, ``;``, tabs or ``|`` (detected from the header; a
    ``;``- or tab-separated file may use a decimal comma).

    Returns
    -------
    frame : DataFrame
        Raw table with a default RangeIndex (a Series becomes a one-column frame; a frame with a
        DatetimeIndex gets it back as a ``date`` column).
    label : str
        How messages name the source.
    line_offset : int
        Add to a 0-based row position to get the number users see (file line: +2 for the header
        and 1-based lines; in-memory frames: +0).
    """
    label = _label(source, name)
    if isinstance(source, pd.Series):
        source = source.to_frame(source.name if source.name is not None else "value")
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        if isinstance(frame.index, pd.DatetimeIndex) and "date" not in frame.columns:
            frame = frame.rename_axis("date").reset_index()
        else:
            frame = frame.reset_index(drop=True)
        return frame, label, 0
    if not isinstance(source, (str, Path)):
        raise DataError(f"{label}: expected a file path or a pandas DataFrame, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise DataError(f"{label}: file not found")
    if path.is_dir():
        raise DataError(f"{label}: is a directory, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{label}: file is empty")
    frame, offset = _read_file(path, label)
    return frame, label, offset


@dataclass
class _Rows:
    """How messages name a row: source label, line offset, original position of each row."""

    label: str
    offset: int
    order: np.ndarray | None = None  # original positions when the rows were reordered

    def ref(self, pos: int, date: object | None = None) -> str:
        orig = int(self.order[pos]) if self.order is not None else pos
        return _row_ref(self.label, self.offset, orig, date)


def _row_ref(label: str, offset: int, pos: int, date: object | None = None) -> str:
    where = f"line {pos + offset}" if offset else f"row {pos}"
    if date is not None and not (isinstance(date, float) and np.isnan(date)):
        try:
            where += f" (date {pd.Timestamp(date).date()})"
        except (ValueError, TypeError):
            where += f" (date {_short(date)})"
    return where


def _short(value: object, limit: int = 24) -> str:
    """``repr`` of a cell value, cut to ``limit`` characters."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _date_column(frame: pd.DataFrame, label: str) -> object:
    cols = {str(c).strip().lower(): c for c in frame.columns}
    if "date" not in cols:
        shown = ", ".join(map(str, list(frame.columns)[:8]))
        raise DataError(f"{label}: no 'date' column (columns: {shown})")
    if frame.empty:
        raise DataError(f"{label}: no data rows")
    return cols["date"]


def _yyyymmdd(raw: pd.Series, rows: _Rows) -> pd.Series:
    """Integer dates such as 20200102 (WRDS, Bloomberg exports)."""
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(vals) & (vals == np.round(vals)) & (vals >= 1000_01_01) & (vals <= 9999_12_31)
    text = pd.Series(np.where(ok, np.nan_to_num(vals), 0).astype(np.int64).astype(str), index=raw.index)
    dates = pd.to_datetime(text.where(ok), format="%Y%m%d", errors="coerce")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        raise DataError(
            f"{rows.label}: column 'date': {rows.ref(pos)} has {_short(raw.iloc[pos])}, "
            "not a date (numeric dates must be YYYYMMDD)"
        )
    return dates


def _strings_to_dates(raw: pd.Series) -> pd.Series:
    """Parse date strings; timestamps keep the wall-clock time of their own UTC offset."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas < 3 warns on mixed offsets, then returns objects
            dates = pd.to_datetime(raw, errors="coerce")
            if dates.isna().to_numpy().any() and raw.notna().all():
                dates = pd.to_datetime(raw, errors="coerce", format="mixed")
        if pd.api.types.is_datetime64_any_dtype(dates):
            return dates
    except (ValueError, TypeError, OverflowError):
        pass  # vectorized parse failed: fall through to the per-value parse below
    # mixed UTC offsets (daylight saving): parse one by one, each keeps its local date

    def one(v: object) -> pd.Timestamp:
        try:
            ts = pd.Timestamp(str(v).strip())
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
        return ts.tz_localize(None) if ts.tzinfo is not None else ts

    return pd.Series([one(v) if pd.notna(v) else pd.NaT for v in raw], index=raw.index, dtype="datetime64[ns]")


def _parse_dates(frame: pd.DataFrame, rows: _Rows) -> tuple[pd.DatetimeIndex, list[str]]:
    """The ``date`` column as midnight dates, oldest first; notes on what was normalized."""
    label = rows.label
    raw = frame[_date_column(frame, label)]
    notes: list[str] = []
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        dates = _yyyymmdd(raw, rows)
    elif pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
    else:
        dates = _strings_to_dates(raw)
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        raise DataError(f"{label}: column 'date': {rows.ref(pos)} has an unparseable date {_short(raw.iloc[pos])}")
    idx = pd.DatetimeIndex(dates)
    zoned = idx.tz is not None
    if zoned:
        idx = idx.tz_localize(None)  # wall-clock time in each row's own offset
    if zoned or (idx != idx.normalize()).any():
        idx = idx.normalize()
        what = "timestamps with a time zone" if zoned else "timestamps with a time of day"
        notes.append(f"{what} reduced to their local dates")
    dup = np.flatnonzero(idx.duplicated())
    if dup.size:
        pos = int(dup[0])
        why = " once times are dropped" if notes else ""
        raise DataError(f"{label}: column 'date': duplicate date{why} at {rows.ref(pos, idx[pos])}")
    return idx.rename("date"), notes


def _sort_dates(idx: pd.DatetimeIndex, rows: _Rows, notes: list[str]) -> np.ndarray | None:
    """Row order that makes the dates ascending: None when they already are, reversed when the
    file runs newest first; any other order is an error."""
    steps = np.diff(idx.asi8)
    if not (steps < 0).any():
        return None
    if (steps < 0).all():
        notes.append("dates run newest first; rows sorted oldest first")
        return np.arange(len(idx))[::-1]
    pos = int(np.flatnonzero(steps < 0)[0]) + 1
    raise DataError(f"{rows.label}: column 'date': dates not sorted ascending at {rows.ref(pos, idx[pos])}")


def _check_daily(idx: pd.DatetimeIndex, label: str) -> None:
    """Reject data sampled coarser than daily (median spacing of two business days or more)."""
    if len(idx) < 3:
        return
    days = idx.to_numpy().astype("datetime64[D]")
    spacing = float(np.median(np.busday_count(days[:-1], days[1:])))
    if spacing < 2:
        return
    kind = "weekly" if spacing <= 7 else "monthly" if spacing <= 25 else "quarterly or coarser"
    raise DataError(
        f"{label}: column 'date': rows are {spacing:g} business days apart (median), i.e. {kind} data; "
        "daily data (one row per trading day) is required"
    )


def _select_columns(
    frame: pd.DataFrame, label: str, columns: Sequence[str], columns_from: str, notes: list[str]
) -> pd.DataFrame:
    """Keep the ``date`` column and ``columns``; every name in ``columns`` must exist."""
    date_col = _date_column(frame, label)
    present = [str(c) for c in frame.columns if c != date_col]
    for col in columns:
        if col not in present:
            raise DataError(f"{columns_from} {col}: no such column in {label}{did_you_mean(col, present)}")
    ignored = len(present) - len(set(columns))
    if ignored:
        notes.append(f"{ignored} column{'s' if ignored > 1 else ''} not listed in {columns_from} ignored")
    return frame[[date_col, *dict.fromkeys(columns)]]


def _dated_frame(
    source: Source,
    name: str | None,
    *,
    daily: bool,
    columns: Sequence[str] | None = None,
    columns_from: str = "[assets]",
) -> tuple[pd.DataFrame, pd.DatetimeIndex, _Rows]:
    """Read a table and its dates: rows oldest first, normalization noted as a :class:`DataWarning`."""
    frame, label, offset = read_table(source, name=name)
    rows = _Rows(label, offset)
    notes: list[str] = []
    if columns is not None:
        frame = _select_columns(frame, label, columns, columns_from, notes)
    idx, date_notes = _parse_dates(frame, rows)
    notes.extend(date_notes)
    order = _sort_dates(idx, rows, notes)
    if order is not None:
        frame = frame.iloc[order].reset_index(drop=True)
        idx = idx[order]
        rows.order = order
    if daily:
        _check_daily(idx, label)
    for note in notes:
        warnings.warn(f"{label}: {note}", DataWarning, stacklevel=3)
    return frame, idx, rows


def _numeric_columns(
    frame: pd.DataFrame, rows: _Rows, idx: pd.DatetimeIndex, *, positive: bool, what: str
) -> pd.DataFrame:
    label = rows.label
    date_col = [c for c in frame.columns if str(c).strip().lower() == "date"][0]
    data = frame.drop(columns=[date_col])
    if data.shape[1] == 0:
        raise DataError(f"{label}: no {what} columns besides 'date'")
    out = {}
    for col in data.columns:
        raw = data[col]
        vals = pd.to_numeric(raw, errors="coerce")
        nonnum = np.flatnonzero(vals.isna().to_numpy() & raw.notna().to_numpy() & (raw.astype(str).str.strip() != ""))
        if nonnum.size:
            pos = int(nonnum[0])
            raise DataError(
                f"{label}: column '{col}': non-numeric value {_short(raw.iloc[pos])} at {rows.ref(pos, idx[pos])}"
            )
        arr = vals.to_numpy(dtype=float)
        if np.all(np.isnan(arr)):
            raise DataError(f"{label}: column '{col}' has no values (all NaN)")
        inf = np.flatnonzero(np.isinf(arr))
        if inf.size:
            pos = int(inf[0])
            raise DataError(f"{label}: column '{col}': infinite value at {rows.ref(pos, idx[pos])}")
        if positive:
            nonpos = np.flatnonzero(arr <= 0)
            if nonpos.size:
                pos = int(nonpos[0])
                kind = "zero" if arr[pos] == 0 else "negative"
                raise DataError(f"{label}: column '{col}': {kind} {what} {arr[pos]:g} at {rows.ref(pos, idx[pos])}")
        out[str(col).strip()] = arr
    result = pd.DataFrame(out, index=idx)
    return result


def load_prices(
    source: Source,
    *,
    name: str | None = None,
    columns: Sequence[str] | None = None,
    columns_from: str = "[assets]",
) -> pd.DataFrame:
    """Load daily price (preferably total-return) levels: a ``date`` column plus one column per asset.

    Dates may be ISO strings, timestamps with a time and/or a UTC offset (reduced to their local
    date), or ``YYYYMMDD`` integers; a file running newest first is reversed. Each normalization is
    reported as a :class:`drb.errors.DataWarning` naming the file.

    Parameters
    ----------
    source : path or DataFrame
        CSV (optionally gzipped; ``,``, ``;``, tab or ``|`` separated) or Parquet file, or a
        DataFrame with a ``date`` column or a DatetimeIndex.
    name : str, optional
        How error messages name the source (default: the path).
    columns : sequence of str, optional
        Use only these asset columns (each must exist); the others are ignored, with one warning
        saying how many.
    columns_from : str
        How messages name where ``columns`` came from (``"[assets]"``, ``"--assets"``).

    Returns
    -------
    DataFrame, shape (T, n)
        Positive finite levels (NaN where an asset has no quote that day), ``DatetimeIndex`` ``date``.

    Raises
    ------
    DataError
        Missing file, empty, binary or non-CSV file, no ``date`` column, unparseable or duplicate
        dates, dates neither ascending nor descending, data coarser than daily, a selected column
        that does not exist, non-numeric, zero, negative or infinite prices, an all-NaN column.
    """
    frame, idx, rows = _dated_frame(source, name, daily=True, columns=columns, columns_from=columns_from)
    return _numeric_columns(frame, rows, idx, positive=True, what="price")


def load_vol_index(source: Source, *, name: str | None = None, column: str | None = None) -> pd.Series:
    """Load a daily implied-volatility index (iVIX/VIX level, percent).

    The file has a ``date`` column and one value column (or name it with ``column``).

    Returns
    -------
    Series, shape (T,)
        Positive finite index levels named ``vol_index``.
    """
    frame, idx, rows = _dated_frame(source, name, daily=True)
    label = rows.label
    values = _numeric_columns(frame, rows, idx, positive=True, what="index level")
    if column is not None:
        if column not in values.columns:
            raise DataError(f"{label}: no column '{column}' (columns: {', '.join(values.columns)})")
        series = values[column]
    elif values.shape[1] == 1:
        series = values.iloc[:, 0]
    else:
        for cand in ("vol_index", "close", "vix", "ivix", "VIX", "iVIX"):
            if cand in values.columns:
                series = values[cand]
                break
        else:
            raise DataError(
                f"{label}: {values.shape[1]} value columns; name the index column (columns: {', '.join(values.columns)})"
            )
    return series.rename("vol_index")


def load_macro(source: Source, *, name: str | None = None) -> pd.DataFrame:
    """Load monthly leading indicators: a ``date`` column (any day of the reference month) plus one
    column per indicator.

    Dates are normalized to the first day of the reference month; the publication lag is applied
    later, by the cycle classifier.

    Returns
    -------
    DataFrame, shape (M, k)
        Finite indicator values (NaN allowed for missing months), monthly ``DatetimeIndex`` ``date``.
    """
    frame, idx, rows = _dated_frame(source, name, daily=False)
    label = rows.label
    months = idx.to_period("M").to_timestamp()
    dup = np.flatnonzero(months.duplicated())
    if dup.size:
        pos = int(dup[0])
        raise DataError(
            f"{label}: column 'date': two rows for the month {months[pos]:%Y-%m} at {rows.ref(pos, idx[pos])}"
        )
    values = _numeric_columns(frame, rows, idx, positive=False, what="value")
    values.index = pd.DatetimeIndex(months, name="date")
    return values
