"""The numerics core: law forms, fitting, uncertainty and planning.

numpy/scipy only; never imports torch (and imports scipy lazily), so it starts
fast and serves users who never train anything here.
"""

from sparsescale.laws.forms import PRESETS, Law, load_law, preset

__all__ = ["Law", "PRESETS", "load_law", "preset"]
