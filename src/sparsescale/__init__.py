"""sparsescale: scaling laws for weight-sparse Transformers (arXiv 2309.08520).

Layers (imports point downward only): cli -> recipes -> sweep/report -> train
-> models/data/sparsity (torch) -> laws (numpy/scipy only, no torch).
"""

__version__ = "0.1.0"
