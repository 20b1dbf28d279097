"""What every report section renders with: HTML escaping, embedded figures and
number formats. The bottom of report/: it imports nothing from report, so a
section and the page that assembles the sections can both use it."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

esc = html.escape


def img(path: Path, alt: str) -> str:
    """A PNG embedded as a base64 data URI: the page stays one self-contained
    file that can be mailed or archived as is."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def figure(path: Path, alt: str, caption: str) -> str:
    """A figure with its caption; `caption` is HTML (it may carry <sub>), `alt` is text."""
    return f"<figure>{img(path, alt)}<figcaption>{caption}</figcaption></figure>"


def fmt(x: float) -> str:
    """A coefficient as the tables show it: 4 significant figures."""
    return f"{x:.4g}"


def num(v, spec: str = ".4g") -> str:
    """A value that may be missing: None or a non-finite float (an unreachable
    loss's FLOPs, cleaned to None in the JSON) is '-'."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def short(n: float) -> str:
    """200000 -> '200k', 1.5e9 -> '1.5B'."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"
