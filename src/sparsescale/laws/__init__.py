"""The numerics core: law forms, fitting, uncertainty and planning.

numpy/scipy only; never imports torch (and imports scipy lazily), so it starts
fast and serves users who never train anything here.
"""

from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import PRESETS, load_law, preset

__all__ = ["FitOptions", "Law", "PRESETS", "Points", "load_law", "preset"]
