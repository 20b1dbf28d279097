"""The report's sections, one module each. A section computes a typed
dataclass from the store rows or the fitted law (`compute`) and renders it
three ways (`to_html`, `to_text`, `to_json`); report.build calls them in page
order. Sections import from laws/, sweep/ and the low report modules
(points, render, determined, figures, curves), never from report.build or
report.html, so the orchestrator sits above all of them.

In page order: law_fit (the fitted law and its holdout), recommendation (S_opt
at the sweep's budgets), calibration, lr_scan, comparison (against the
average-parameter law), regime (does the loss fall like a power law in D),
fit_figures, from_dense (pruning a pretrained dense model), patterns (n:m).
"""
