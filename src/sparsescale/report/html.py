"""report.html's shell: one self-contained page (figures embedded as base64
data URIs, no scripts, no external resources) that can be mailed or archived
as is. The sections render their own fragments (report/sections/); this
module only wraps them: head, title, style, the summary's notes and warnings."""

from __future__ import annotations

import datetime

from sparsescale.report.render import esc

# A backslash at a line's end continues the line: short source lines, the page's CSS unchanged.
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif;\
 max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; }\
 td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; }\
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary { background: #eef6ee; border-left: 4px solid #3a3; padding: 0.8em 1em;\
 font-size: 1.05em; }
.warning { background: #fff6e0; border-left: 4px solid #e90; padding: 0.5em 1em; margin: 0.3em 0; }
.note { background: #eef2fa; border-left: 4px solid #47c; padding: 0.5em 1em; margin: 0.3em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
tr.flag td { background: #fff6e0; }
"""


def page(
    store_path,
    family: str,
    n_points: int,
    summary: list[str],
    notes: list[str],
    warnings: list[str],
    after_warnings: list[str],
    body: list[str],
) -> str:
    """The page: its head, the Summary (`summary` fragments, then the notes and
    warnings, then `after_warnings`), then the sections' `body` fragments."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>sparsescale report: "
        f"{esc(str(store_path))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Sparse scaling law for {esc(family or 'this sweep')}</h1>",
        f"<p>Store <code>{esc(str(store_path))}</code>, {n_points} finished runs fitted, "
        f"generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.</p>",
        "<h2>Summary</h2>",
        *summary,
    ]
    parts += [f"<div class='note'>{esc(note)}</div>" for note in notes]
    parts += [f"<div class='warning'>Warning: {esc(w)}</div>" for w in warnings]
    return "\n".join(parts + after_warnings + body + ["</body></html>\n"])
