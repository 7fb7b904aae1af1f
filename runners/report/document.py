"""The report as a document: a list of blocks rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runners.markdown import FormattedTable

__all__ = ["Block", "markdown_document", "html_document"]


# ----------------------------------------------------------------------------- document model
# A report is a list of blocks rendered twice, to Markdown and to HTML.


@dataclass
class Block:
    """One block of the report; ``kind`` says which fields it uses."""

    kind: str  # "h2", "p", "facts", "table", "figure", "pre", "links", "items"
    text: str = ""
    table: FormattedTable | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    path: str = ""  # relative path of a figure
    links: list[tuple[str, str]] = field(default_factory=list)
    collapsed: bool = False
    summary: str = "show"  # text of the disclosure widget of a collapsed block (HTML)


def _md_fold(block: Block, lines: list[str]) -> list[str]:
    """``lines`` inside ``<details>`` when the block is collapsed (GitHub and most markdown
    viewers fold it; the blank lines keep the markdown inside rendered)."""
    if not block.collapsed:
        return lines
    summary = html.escape(block.summary or "show")
    return [f"<details><summary>{summary}</summary>", "", *lines, "", "</details>", ""]


def markdown_document(blocks: Sequence[Block], title: str) -> str:
    """``report.md``: ``# title`` then every block (figures linked by relative path)."""
    out = [f"# {title}", ""]
    for b in blocks:
        if b.kind == "h2":
            out += [f"## {b.text}", ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "facts":
            out += [f"- **{k}:** {v}" for k, v in b.facts] + [""]
        elif b.kind == "table" and b.table is not None:
            if b.text:
                out += [f"*{b.text}*", ""]
            out += _md_fold(b, [b.table.markdown()])
        elif b.kind == "figure":
            out += [f"![{Path(b.path).stem}]({b.path})", "", f"*{b.text}*", ""]
        elif b.kind == "pre":
            out += _md_fold(b, ["```", b.text, "```", ""])
        elif b.kind == "links":
            out += [f"- [{name}]({href})" for name, href in b.links] + [""]
        elif b.kind == "items":
            out += ([b.text, ""] if b.text else []) + [f"- {item}" for item, _ in b.links] + [""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:1.7em;border-bottom:2px solid #333;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table.table{border-collapse:collapse;font-size:.8em;margin:.6em 0 1.2em;display:block;overflow-x:auto}
table.table th,table.table td{border:1px solid #ddd;padding:3px 6px;white-space:nowrap}
table.table th{white-space:normal;vertical-align:bottom}
table.table th{background:#f0f0f0;position:sticky;top:0}
table.table td.num,table.table th.num{text-align:right;font-variant-numeric:tabular-nums}
table.table tbody tr:nth-child(even){background:#fafafa}
figure{margin:1em 0 2em}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555;margin-top:.3em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:4px 16px}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
pre{background:#f5f5f5;padding:8px;overflow-x:auto;font-size:.85em}
p.caption{font-style:italic;color:#555;margin-bottom:.2em}
.muted{color:#777;font-size:.85em}
"""


def html_document(blocks: Sequence[Block], title: str, root: Path, *, embed_tearsheets: bool) -> str:
    """``report.html``, self-contained: figures under ``root`` embedded as base64 PNG; tear sheet
    links too with ``embed_tearsheets``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for b in blocks:
        inner: str
        if b.kind == "h2":
            parts.append(f"<h2>{html.escape(b.text)}</h2>")
            continue
        if b.kind == "p":
            inner = f"<p>{html.escape(b.text)}</p>"
        elif b.kind == "facts":
            inner = '<dl class="facts">' + "".join(
                f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in b.facts) + "</dl>"
        elif b.kind == "table" and b.table is not None:
            cap = f'<p class="caption">{html.escape(b.text)}</p>' if b.text else ""
            if b.collapsed:  # the caption stays visible, the rows fold away
                parts.append(cap + f"<details><summary>{html.escape(b.summary)}</summary>"
                             f"{b.table.html()}</details>")
                continue
            inner = cap + b.table.html()
        elif b.kind == "figure":
            data = base64.b64encode((root / b.path).read_bytes()).decode("ascii")
            inner = (f'<figure data-figure="{html.escape(b.path)}"><img alt="{html.escape(b.text)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{html.escape(b.text)} '
                     f'<span class="muted">({html.escape(b.path)})</span></figcaption></figure>')
        elif b.kind == "pre":
            inner = f"<pre>{html.escape(b.text)}</pre>"
        elif b.kind == "items":
            head = f"<p>{html.escape(b.text)}</p>" if b.text else ""
            inner = head + "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item, _ in b.links) + "</ul>"
        elif b.kind == "links":
            items = []
            for name, href in b.links:
                link = f'<a href="{html.escape(href)}">{html.escape(name)}</a>'
                if embed_tearsheets and href.endswith(".png") and (root / href).is_file():
                    data = base64.b64encode((root / href).read_bytes()).decode("ascii")
                    link = (f'<details><summary>{html.escape(name)}</summary>'
                            f'<figure data-figure="{html.escape(href)}"><img alt="{html.escape(name)}" '
                            f'src="data:image/png;base64,{data}"></figure></details>')
                items.append(f"<li>{link}</li>")
            inner = "<ul>" + "".join(items) + "</ul>"
        else:
            continue
        if b.collapsed:
            inner = f"<details><summary>{html.escape(b.summary)}</summary>{inner}</details>"
        parts.append(inner)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f'<p class="muted">Generated {stamp} by runners.report from the saved outputs of '
                 f"{html.escape(str(root))}.</p></main></body></html>")
    return "\n".join(parts) + "\n"


