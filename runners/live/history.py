"""The warm-up history of ``drb paper``: the config's prices (and volatility index, macro file).

The history file may be the live file itself: only its complete lines are read, and with
``data.end`` only those up to the first row dated after it (the rest is the live part).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["load_history"]


def _load_history_prices(source: Any, cfg: Any, *, name: str) -> pd.DataFrame:
    """The warm-up prices; with ``[assets]``, only those columns (and a ``vol_index`` column when
    the file has one) are read, so a merged prices file with other columns works as in compare."""
    from feeds.loaders import load_prices

    if not cfg.assets:
        return load_prices(source, name=name)
    if isinstance(source, pd.DataFrame):
        header = [str(c) for c in source.columns]
    elif Path(source).suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        header = list(pq.read_schema(source).names)
    else:
        from feeds.loaders import _head_lines, _sniff_delimiter

        path = Path(source)
        header = _sniff_delimiter(_head_lines(path, path.suffix.lower() == ".gz", name))[1]
    columns = [*cfg.assets, *(["vol_index"] if "vol_index" in header else [])]
    return load_prices(source, name=name, columns=columns)


def load_history(cfg: Any):
    """The warm-up history of a config as :class:`feeds.MarketData`.

    The prices table may carry a ``vol_index`` column (the live file's layout); it is then the
    volatility index unless ``data.vol_index`` names a file.

    Parameters
    ----------
    cfg : RunConfig
        Its ``prices``, ``vol_index``, ``macro``, ``assets``, ``start``, ``end`` and ``ffill_limit``.

    Returns
    -------
    MarketData
        Prices of shape (T, n) aligned with the volatility index and the macro table.
    """
    from feeds.loaders import load_macro, load_vol_index
    from feeds.market import align_market

    prices = _read_history_prices(cfg)
    vol = None
    if "vol_index" in prices.columns:
        vol = prices.pop("vol_index").dropna()
    if cfg.vol_index is not None:
        vol = load_vol_index(cfg.vol_index)
    macro = load_macro(cfg.macro) if cfg.macro is not None else None
    if cfg.start is not None or cfg.end is not None:
        prices = prices.loc[cfg.start : cfg.end]
        if vol is not None:
            vol = vol.loc[cfg.start : cfg.end]
    labels = {"prices": str(cfg.prices)}
    if cfg.vol_index is not None:
        labels["vol_index"] = str(cfg.vol_index)
    if cfg.macro is not None:
        labels["macro"] = str(cfg.macro)
    return align_market(
        prices,
        vol_index=vol if vol is not None and len(vol) else None,
        macro=macro,
        asset_classes=cfg.assets or None,
        ffill_limit=cfg.ffill_limit,
        labels=labels,
    )


def _read_history_prices(cfg: Any) -> pd.DataFrame:
    """The prices table of ``data.prices`` up to ``data.end`` (complete CSV lines only)."""
    path = Path(cfg.prices)
    end = None if cfg.end is None else pd.Timestamp(cfg.end)
    if path.suffix.lower() == ".csv" and path.is_file():
        raw = path.read_bytes()
        # The history file may be the live file itself: read only its complete lines (it may be
        # caught while a row is being appended) and, with data.end, only the lines up to the
        # first one dated after it. The rest is the live part, checked row by row by the live
        # feed (a malformed live row is skipped there, not fatal to every fresh start).
        keep = raw[: raw.rfind(b"\n") + 1]
        if end is not None:
            keep = _csv_up_to(keep, end)
        if len(keep) < len(raw):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                cut = Path(tmp) / path.name
                cut.write_bytes(keep)
                prices = _load_history_prices(cut, cfg, name=str(path))
        else:
            prices = _load_history_prices(path, cfg, name=str(path))
    elif path.suffix.lower() in (".parquet", ".pq") and path.is_file() and end is not None:
        frame = pd.read_parquet(path)
        if "date" not in frame.columns and isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis("date").reset_index()
        dates = pd.to_datetime(frame["date"], errors="coerce") if "date" in frame.columns else None
        if dates is not None:
            after = np.flatnonzero((dates > end).to_numpy())
            if after.size:
                frame = frame.iloc[: after[0]]
        prices = _load_history_prices(frame, cfg, name=str(path))
    else:
        prices = _load_history_prices(path, cfg, name=str(path))
    return prices


def _csv_up_to(data: bytes, end: pd.Timestamp) -> bytes:
    """The lines of a CSV (header first) before the first row dated after ``end``."""
    lines = data.splitlines(keepends=True)
    if not lines:
        return data
    header = [h.strip().strip('"').lower() for h in lines[0].decode("utf-8", "replace").split(",")]
    col = header.index("date") if "date" in header else 0
    size = len(lines[0])
    for line in lines[1:]:
        fields = line.split(b",")
        if len(fields) > col:
            try:
                date = pd.Timestamp(fields[col].strip().strip(b'"').decode())
            except (ValueError, UnicodeDecodeError):
                date = None
            if date is not None and not pd.isna(date) and date.tz_localize(None) > end:
                break
        size += len(line)
    return data[:size]
