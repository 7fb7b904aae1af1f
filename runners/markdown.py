"""Tables as text: one cell formatter and one Markdown / HTML table renderer for every output.

The report, the sweep and the Monte Carlo summaries all render their tables here, and the metrics table
has its labels and formats here (``metrics.md``). Number formats:
percent with one or two decimals, ratios with two decimals, fixed decimals (``"4dp"``), integers;
NaN as ``n/a``; infinities as ``inf`` / ``-inf``. CSV files keep full-precision decimals.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from drb.errors import DataError
from runners.metrics import METRIC_COLUMNS

__all__ = ["FormattedTable", "format_table", "format_value", "to_markdown", "plain_table", "METRIC_LABELS",
           "PERCENT_METRICS", "metrics_formatted", "metrics_markdown"]

#: Human-readable column headers of the metrics table (units in the header).
METRIC_LABELS: dict[str, str] = {
    "ann_return": "Ann. return",
    "ann_vol": "Ann. vol",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "Max DD",
    "calmar": "Calmar",
    "info_ratio": "Info ratio",
    "monthly_win_rate": "Win months",
    "monthly_pl_ratio": "Monthly P/L",
    "turnover": "Turnover /yr",
    "extreme_month_return": "Extreme months",
    "worst_month": "Worst month",
    "cvar95": "CVaR 95 (daily)",
}

#: Metrics shown in percent.
PERCENT_METRICS = frozenset(
    {"ann_return", "ann_vol", "max_drawdown", "monthly_win_rate", "turnover",
     "extreme_month_return", "worst_month", "cvar95"}
)


def format_value(value: object, kind: str = "ratio") -> str:
    """Format one cell: ``kind`` is ``"pct"`` (1 decimal %), ``"pct2"``, ``"ratio"`` (2 dp),
    ``"<k>dp"`` (k decimals, e.g. ``"4dp"``), ``"int"`` or ``"text"``. NaN -> ``n/a``; +-inf -> ``inf`` / ``-inf``."""
    if kind == "text" or isinstance(value, str):
        return str(value)
    if value is None:
        return "n/a"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if np.isnan(v):
        return "n/a"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if kind == "pct":
        text = f"{v:.1%}"
    elif kind.endswith("dp") and kind[:-2].isdigit():
        text = f"{v:.{int(kind[:-2])}f}"
    elif kind == "pct2":
        text = f"{v:.2%}"
    elif kind == "int":
        text = f"{int(round(v))}"
    else:
        text = f"{v:.2f}"
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        text = text[1:]  # no "-0.0%"
    return text


def _escape_md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _breakable(text: str) -> str:
    """HTML-escape a header and let long names wrap: ``<wbr>`` inside CamelCase and after ``_``
    or ``/`` (``DynamicRiskBudget`` -> ``Dynamic<wbr>Risk<wbr>Budget``), so wide tables with one
    column per strategy fit the page."""
    out = html.escape(str(text))
    out = re.sub(r"(?<=[a-z])(?=[A-Z])", "<wbr>", out)
    return re.sub(r"(?<=[_/])(?=\w)", "<wbr>", out)


@dataclass(frozen=True)
class FormattedTable:
    """A table whose cells are already formatted strings, renderable as Markdown or HTML.

    Attributes
    ----------
    headers : tuple of str
    numeric : tuple of bool
        Per column: right-align (numbers) or left-align (text).
    rows : tuple of tuple of str
    """

    headers: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        """GitHub-flavoured Markdown, ending with a newline."""
        align = ["---:" if n else ":---" for n in self.numeric]
        lines = ["| " + " | ".join(_escape_md(h) for h in self.headers) + " |",
                 "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(_escape_md(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def html(self, css_class: str = "table") -> str:
        """An HTML ``<table>`` (cells escaped; numeric columns get class ``num``)."""
        def cls(n: bool) -> str:
            return ' class="num"' if n else ""

        head = "".join(f"<th{cls(n)}>{_breakable(h)}</th>" for h, n in zip(self.headers, self.numeric))
        body = "".join(
            "<tr>" + "".join(f"<td{cls(n)}>{html.escape(c)}</td>" for c, n in zip(row, self.numeric)) + "</tr>"
            for row in self.rows
        )
        return f'<table class="{html.escape(css_class)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def format_table(
    frame: pd.DataFrame,
    formats: Mapping[str, str] | None = None,
    *,
    index: bool = True,
    index_label: str | None = None,
    headers: Mapping[str, str] | None = None,
    default: str = "ratio",
) -> FormattedTable:
    """Format a DataFrame's cells with :func:`format_value`.

    Parameters
    ----------
    frame : pandas.DataFrame
    formats : mapping, optional
        Column -> kind for :func:`format_value`; other numeric columns use ``default``,
        non-numeric ones are printed as text.
    index : bool, default True
        Print the index as the first column (Timestamps as ISO dates).
    index_label : str, optional
        Header of the index column (default: the index name or empty).
    headers : mapping, optional
        Column -> header text.
    default : str, default "ratio"

    Returns
    -------
    FormattedTable
    """
    formats = dict(formats or {})
    headers = dict(headers or {})
    cols = list(frame.columns)
    head = [headers.get(c, str(c)) for c in cols]
    numeric = [bool(pd.api.types.is_numeric_dtype(frame[c])) for c in cols]
    if index:
        head = [index_label if index_label is not None else str(frame.index.name or "")] + head
        numeric = [False] + numeric
    rows = []
    for idx, row in frame.iterrows():
        cells = []
        for c, is_num in zip(cols, numeric[1:] if index else numeric):
            kind = formats.get(c, default if is_num else "text")
            cells.append(format_value(row[c], kind))
        if index:
            label = idx.date().isoformat() if isinstance(idx, pd.Timestamp) else str(idx)
            cells = [label] + cells
        rows.append(tuple(cells))
    return FormattedTable(tuple(head), tuple(numeric), tuple(rows))


def to_markdown(
    frame: pd.DataFrame,
    formats: Mapping[str, str] | None = None,
    *,
    index: bool = True,
    index_label: str | None = None,
    headers: Mapping[str, str] | None = None,
    default: str = "ratio",
) -> str:
    """Render a DataFrame as a Markdown table (see :func:`format_table` for the arguments)."""
    return format_table(frame, formats, index=index, index_label=index_label, headers=headers,
                        default=default).markdown()


def plain_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame's columns (no index) as Markdown: integers as integers, other numbers with
    ``digits`` decimals, text as is."""
    formats = {
        c: ("int" if pd.api.types.is_integer_dtype(frame[c]) else f"{digits}dp")
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    }
    return to_markdown(frame, formats, index=False)


# ----------------------------------------------------------------------------- the metrics table


def metrics_formatted(metrics: pd.DataFrame) -> FormattedTable:
    """The metrics table formatted (percentages / 2-dp ratios; readable headers).

    Parameters
    ----------
    metrics : pandas.DataFrame
        Output of :func:`runners.metrics.compute_metrics` (index ``strategy``).
    """
    missing = [c for c in METRIC_COLUMNS if c not in metrics.columns]
    if missing:
        raise DataError(f"metrics table lacks column(s) {missing}")
    table = metrics[list(METRIC_COLUMNS)]
    formats = {c: ("pct" if c in PERCENT_METRICS else "ratio") for c in METRIC_COLUMNS}
    formats["cvar95"] = "pct2"
    return format_table(table, formats, index_label="Strategy", headers=METRIC_LABELS)


def metrics_markdown(metrics: pd.DataFrame) -> str:
    """The metrics table in Markdown (see :func:`metrics_formatted`)."""
    return metrics_formatted(metrics).markdown()
