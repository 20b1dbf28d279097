"""JSON that every parser reads: non-finite numbers become null.

Python's json writes NaN and Infinity, which are not JSON; a law or a report
that holds one (a prediction far outside the fitted range overflows) would
break every consumer. `finite_json` returns the cleaned object and the paths
of the values it replaced, so the caller can say so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_json(obj: Any, path: str = "") -> tuple[Any, list[str]]:
    """(a copy of obj with NaN/inf floats as None and numpy scalars/arrays as
    Python values, the dotted paths of the replaced values)."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    # numpy values first become Python ones (json cannot write np.float64 in
    # a list, nor any ndarray); then a non-finite float becomes null and its
    # path is recorded, so the caller can warn about what was dropped
    if isinstance(obj, float) and not math.isfinite(obj):
        return None, [path or "(value)"]
    if isinstance(obj, dict):
        out, bad = {}, []
        for k, v in obj.items():
            out[k], b = finite_json(v, f"{path}.{k}" if path else str(k))
            bad += b
        return out, bad
    if isinstance(obj, (list, tuple)):
        out_list, bad = [], []
        for i, v in enumerate(obj):
            clean, b = finite_json(v, f"{path}[{i}]")
            out_list.append(clean)
            bad += b
        return out_list, bad
    return obj, []
