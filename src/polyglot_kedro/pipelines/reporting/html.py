"""Self-contained HTML (inline CSS, base64 images, no scripts) and Markdown tables."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
figure { margin: 1em 0 2em; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
.downloads { font-size: 0.85em; } .summary td, .summary th { text-align: left; }
figcaption { font-size: 0.85em; color: #444; max-width: 60em; }
.table-box { overflow-x: auto; max-width: 100%; } p.table-note { font-size: 0.85em; color: #444; max-width: 60em; }
details > summary { cursor: pointer; color: #333; margin: 0.3em 0; }
.notes li { color: #8a4b00; } code { background: #f5f5f5; padding: 0 3px; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.4g}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (``|`` escaped; floats to 4 significant digits)."""
    if df is None or df.empty:
        return "_(no rows)_"
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        return _fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False, name=None)]
    return "\n".join(lines)


#: Tables longer than this are collapsed (``<details>``) with their row count.
COLLAPSE_ROWS = 30


def _table_html(df: pd.DataFrame) -> str:
    """A table in its own horizontally scrolling box; long ones collapsed behind their row count."""
    if df is None or df.empty:
        return "<p><em>(no rows)</em></p>"
    table = df.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    box = f'<div class="table-box">{table}</div>'
    if len(df) > COLLAPSE_ROWS:
        return f"<details><summary>{len(df)} rows (show)</summary>{box}</details>"
    return box


def _summary_html(intro: str, lines: pd.DataFrame) -> str:
    """The answer-first table: one row per group and metric, its figure links as in-page anchors."""
    esc = html.escape
    out = [f"<h2>The answer first</h2><p>{esc(intro)}</p>"]
    if lines is None or lines.empty:
        return out[0]
    cols = ["group", "metric", "task", "prompt_setting", "mono", "best_multi", "plateau"]
    head = "".join(f"<th>{esc(c)}</th>" for c in [*cols, "figures"])
    body = []
    for _, row in lines.iterrows():
        links = ", ".join(f'<a href="#{esc(anchor, quote=True)}">{esc(label)}</a>' for label, anchor in row["figures"])
        body.append("<tr>" + "".join(f"<td>{esc(str(row[c]))}</td>" for c in cols) + f"<td>{links}</td></tr>")
    return out[0] + f'<div class="table-box"><table class="summary"><tr>{head}</tr>{"".join(body)}</table></div>'


def _downloads(links) -> str:
    if not links:
        return ""
    esc = html.escape
    return ' <span class="downloads">Download: ' + " | ".join(
        f'<a href="{esc(href, quote=True)}">{esc(label)}</a>' for label, href in links) + "</span>"


def render(*, title: str, meta: Sequence[tuple[str, str]], notes: Sequence[str], figures: Sequence[dict[str, Any]],
           tables: Sequence[tuple[str, str, pd.DataFrame]], viz_link: str, viz_command: str,
           summary: tuple[str, pd.DataFrame] | None = None) -> str:
    """The report document: the answer first, then figures, tables, and the run's metadata.

    Args:
        title: page title.
        meta: (label, value) pairs for the header.
        notes: skipped figures and other caveats.
        figures: ``{id, title, caption, png_base64}`` dicts, optionally
            ``downloads``: (label, relative href) pairs (PNG, SVG, CSV).
        tables: (title, note, frame) triples (an empty note is left out).
        viz_link: relative link to the kedro-viz build.
        viz_command: how to build it.
        summary: (intro sentence, :func:`~.summary.summary_lines` frame), or None.

    Returns:
        The HTML text.
    """
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if summary is not None:
        out.append(_summary_html(*summary))
    if notes:
        out.append('<h2>Notes</h2><ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    out.append("<h2>Figures</h2>")
    if not figures:
        out.append("<p><em>No figure could be drawn (see notes).</em></p>")
    for fig in figures:
        out.append(f'<figure id="{esc(fig["id"], quote=True)}"><img alt="{esc(fig["title"], quote=True)}" '
                   f'src="data:image/png;base64,{fig["png_base64"]}">'
                   f"<figcaption><strong>{esc(fig['title'])}.</strong> {esc(fig['caption'])}"
                   + _downloads(fig.get("downloads", ())) + "</figcaption></figure>")
    for name, note, df in tables:
        text = f'<p class="table-note">{esc(note)}</p>' if note else ""
        out.append(f"<h2>{esc(name)}</h2>{text}{_table_html(df)}")
    out.append("<h2>About this run</h2>")
    out.append('<dl class="meta">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>" for k, v in meta) + "</dl>")
    out.append(f'<p>Lineage: <a href="{esc(viz_link, quote=True)}">kedro-viz pipeline view</a> '
               f"(build it first from the project root: <code>{esc(viz_command)}</code>).</p>")
    out.append("</body></html>")
    return "\n".join(out)
