"""The fit's figures: loss curves of every run, loss against N with the law,
predicted against measured (held-out runs at the prediction of the fit that
did not see them), and the S_opt map (two maps when the sparse and the
average-parameter laws disagree). compute draws them into the report folder;
the section shows the first three, recommendation and comparison the maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsescale.report import figures
from sparsescale.report.curves import plot_loss_curves
from sparsescale.report.points import SweepPoints
from sparsescale.report.render import figure


@dataclass
class FitFigures:
    paths: dict[str, Path]  # name -> PNG in the report folder


def compute(law, pts: SweepPoints, holdout, out_dir: Path, avg_law=None) -> FitFigures:
    """Draw the figures; with avg_law (the laws disagree on S_opt) its S_opt map too."""
    S, N, D, L = pts.sparsity, pts.n_nonzero, pts.data, pts.loss
    paths = {
        name: out_dir / f"{name}.png"
        for name in ("loss_curves", "loss_vs_n", "fit_quality", "sopt_contours")
    }
    plot_loss_curves(pts.records, paths["loss_curves"], budget_unit=pts.budget_unit)
    figures.plot_loss_vs_n(law, S, N, D, L, paths["loss_vs_n"])
    predicted = np.asarray(law.predict(S, N, D), dtype=float)
    mask = np.zeros(len(L), dtype=bool)
    if holdout is not None:
        mask = np.asarray(holdout["mask"], dtype=bool)
        predicted[mask] = np.asarray(
            holdout["predicted"], dtype=float
        )  # the extrapolation, not the full fit
    figures.plot_fit_quality(S, predicted, L, mask, paths["fit_quality"])
    c_all = 6.0 * N * D
    ranges = dict(
        n_range=(float(N.min()) / 3, float(N.max()) * 100),
        c_range=(float(c_all.min()) / 3, float(c_all.max()) * 1000),
    )
    side = avg_law is not None  # same axes for both maps, so the two compare point by point
    figures.plot_sopt_contours(
        law,
        paths["sopt_contours"],
        flops="sparse",
        **ranges,
        title="S_opt under the paper's sparse law" if side else None,
    )
    if side:
        paths["sopt_contours_avgparam"] = out_dir / "sopt_contours_avgparam.png"
        figures.plot_sopt_contours(
            avg_law,
            paths["sopt_contours_avgparam"],
            flops="sparse",
            **ranges,
            title="S_opt under the average-parameter law",
        )
    return FitFigures(paths)


def to_json(sec: FitFigures) -> dict[str, str]:
    """File names, relative to the report folder."""
    return {k: v.name for k, v in sec.paths.items()}


def to_html(sec: FitFigures) -> list[str]:
    f = sec.paths
    return [
        "<h2>Loss against size</h2>",
        figure(
            f["loss_vs_n"],
            "loss against N per sparsity with the fitted law",
            "Final validation loss against non-zero parameters N, per sparsity, with the fitted "
            "law.",
        ),
        "<h2>Predicted against measured</h2>",
        figure(
            f["fit_quality"],
            "predicted against measured loss",
            "Each run's measured loss against the law's prediction; held-out runs (largest N) show "
            "the prediction of the fit made without them.",
        ),
        "<h2>Loss curves</h2>",
        figure(
            f["loss_curves"],
            "validation loss curves",
            "Validation loss during training, every run.",
        ),
    ]


def to_text(sec: FitFigures) -> list[str]:
    """Nothing: figures live on the page."""
    return []
