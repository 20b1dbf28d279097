"""How far to trust a fitted law.

- bootstrap: refits on resampled runs (coefficient intervals, any derived
  quantity), and the largest-N holdout;
- calibration: rolling holdouts, and the model-error rate they measure;
- intervals: the Uncertainty a law carries (coefficient draws + model error
  growing with the extrapolation distance) and the loss intervals it gives;
- assess: the whole check in one call, as `sparsescale fit` and the report run it.

Import the modules themselves: this package imports nothing, so that a law
(laws.law, which reads an Uncertainty from its file) loads without the fitter.
"""
