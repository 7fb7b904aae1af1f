"""Loading and validating user data: prices, an implied-volatility index and monthly macro indicators.

Every loader accepts a path (``.csv``, ``.csv.gz``, ``.parquet``/``.pq``) or a DataFrame/Series and
returns clean pandas objects indexed by a ``DatetimeIndex`` named ``date``. Every rejection is a
:class:`drb.errors.DataError` with one line naming the source (file or "DataFrame"), the column and the
first bad row (file line number for files, row position for in-memory frames) with its date.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from drb.errors import DataError

__all__ = ["load_prices", "load_vol_index", "load_macro", "read_table"]

Source = str | Path | pd.DataFrame | pd.Series

_PARQUET = (".parquet", ".pq")


def _label(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


def read_table(source: Source, *, name: str | None = None) -> tuple[pd.DataFrame, str, int]:
    """Read a table from a path or a frame without interpreting it.

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
    suffixes = "".join(path.suffixes).lower()
    try:
        if path.suffix.lower() in _PARQUET:
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex):
                frame = frame.rename_axis("date").reset_index()
            else:
                frame = frame.reset_index(drop=True)
            return frame, label, 0
        if not suffixes.endswith(".gz"):
            with path.open("rb") as fh:
                head = fh.read(8192)
            if b"\x00" in head:
                raise DataError(f"{label}: binary content, expected a CSV text file")
        frame = pd.read_csv(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty") from None
    except UnicodeDecodeError:
        raise DataError(f"{label}: binary content, expected a CSV text file") from None
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{label}: cannot be read as a table ({msg})") from None
    return frame, label, 2


def _row_ref(label: str, offset: int, pos: int, date: object | None = None) -> str:
    where = f"line {pos + offset}" if offset else f"row {pos}"
    if date is not None and not (isinstance(date, float) and np.isnan(date)):
        try:
            where += f" (date {pd.Timestamp(date).date()})"
        except (ValueError, TypeError):
            where += f" (date {date!r})"
    return where


def _parse_dates(frame: pd.DataFrame, label: str, offset: int) -> pd.DatetimeIndex:
    cols = {str(c).strip().lower(): c for c in frame.columns}
    if "date" not in cols:
        shown = ", ".join(map(str, list(frame.columns)[:8]))
        raise DataError(f"{label}: no 'date' column (columns: {shown})")
    if frame.empty:
        raise DataError(f"{label}: no data rows")
    raw = frame[cols["date"]]
    dates = pd.to_datetime(raw, errors="coerce")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        raise DataError(
            f"{label}: column 'date': {_row_ref(label, offset, pos)} has an unparseable date {raw.iloc[pos]!r}"
        )
    idx = pd.DatetimeIndex(dates)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    dup = np.flatnonzero(idx.duplicated())
    if dup.size:
        pos = int(dup[0])
        raise DataError(f"{label}: column 'date': duplicate date at {_row_ref(label, offset, pos, idx[pos])}")
    order = np.flatnonzero(np.diff(idx.asi8) < 0)
    if order.size:
        pos = int(order[0]) + 1
        raise DataError(
            f"{label}: column 'date': dates not sorted ascending at {_row_ref(label, offset, pos, idx[pos])}"
        )
    return idx.rename("date")


def _numeric_columns(
    frame: pd.DataFrame, label: str, offset: int, idx: pd.DatetimeIndex, *, positive: bool, what: str
) -> pd.DataFrame:
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
                f"{label}: column '{col}': non-numeric value {raw.iloc[pos]!r} at {_row_ref(label, offset, pos, idx[pos])}"
            )
        arr = vals.to_numpy(dtype=float)
        if np.all(np.isnan(arr)):
            raise DataError(f"{label}: column '{col}' has no values (all NaN)")
        inf = np.flatnonzero(np.isinf(arr))
        if inf.size:
            pos = int(inf[0])
            raise DataError(f"{label}: column '{col}': infinite value at {_row_ref(label, offset, pos, idx[pos])}")
        if positive:
            nonpos = np.flatnonzero(arr <= 0)
            if nonpos.size:
                pos = int(nonpos[0])
                kind = "zero" if arr[pos] == 0 else "negative"
                raise DataError(
                    f"{label}: column '{col}': {kind} {what} {arr[pos]:g} at {_row_ref(label, offset, pos, idx[pos])}"
                )
        out[str(col).strip()] = arr
    result = pd.DataFrame(out, index=idx)
    return result


def load_prices(source: Source, *, name: str | None = None) -> pd.DataFrame:
    """Load daily price (preferably total-return) levels: a ``date`` column plus one column per asset.

    Parameters
    ----------
    source : path or DataFrame
        CSV (optionally gzipped) or Parquet file, or a DataFrame with a ``date`` column or a
        DatetimeIndex.
    name : str, optional
        How error messages name the source (default: the path).

    Returns
    -------
    DataFrame, shape (T, n)
        Positive finite levels (NaN where an asset has no quote that day), ``DatetimeIndex`` ``date``.

    Raises
    ------
    DataError
        Missing file, empty or binary file, no ``date`` column, unparseable, duplicate or unsorted
        dates, non-numeric, zero, negative or infinite prices, an all-NaN column.
    """
    frame, label, offset = read_table(source, name=name)
    idx = _parse_dates(frame, label, offset)
    return _numeric_columns(frame, label, offset, idx, positive=True, what="price")


def load_vol_index(source: Source, *, name: str | None = None, column: str | None = None) -> pd.Series:
    """Load a daily implied-volatility index (iVIX/VIX level, percent).

    The file has a ``date`` column and one value column (or name it with ``column``).

    Returns
    -------
    Series, shape (T,)
        Positive finite index levels named ``vol_index``.
    """
    frame, label, offset = read_table(source, name=name)
    idx = _parse_dates(frame, label, offset)
    values = _numeric_columns(frame, label, offset, idx, positive=True, what="index level")
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
    frame, label, offset = read_table(source, name=name)
    idx = _parse_dates(frame, label, offset)
    months = idx.to_period("M").to_timestamp()
    dup = np.flatnonzero(months.duplicated())
    if dup.size:
        pos = int(dup[0])
        raise DataError(
            f"{label}: column 'date': two rows for the month {months[pos]:%Y-%m} at {_row_ref(label, offset, pos, idx[pos])}"
        )
    values = _numeric_columns(frame, label, offset, idx, positive=False, what="value")
    values.index = pd.DatetimeIndex(months, name="date")
    return values
