"""Figures of a fitted law: fit quality, loss against N, and the S_opt map.

Each function writes one PNG atomically and returns its path. matplotlib runs
headless (Agg); every axis carries a label with units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparsescale.atomic import save_figure
from sparsescale.laws.law import Law

# tick labels written as the tables write numbers
from sparsescale.report.render import short as _short


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sparsity_colors(levels):
    plt = _pyplot()
    cmap = plt.get_cmap("viridis")
    levels = sorted(set(float(s) for s in levels))
    return {s: cmap(i / max(len(levels) - 1, 1)) for i, s in enumerate(levels)}


def nominal_sizes(n_nonzero, rtol: float = 0.05) -> list[float]:
    """The distinct sizes of a sweep, as the round numbers it asked for.

    Runs that target one N land a little off it (49,937 non-zeros for "50k",
    slightly different at each sparsity), so the measured values are grouped
    (within rtol of the group's first) and each group is named by its median
    rounded to 2 significant figures when that is within 1%, else 3
    (49,937 -> 50k, 99,810 -> 100k, 12,480 -> 12.5k)."""
    groups: list[list[float]] = []
    for n in sorted(float(v) for v in np.asarray(n_nonzero, dtype=float).ravel()):
        if groups and n <= groups[-1][0] * (1 + rtol):
            groups[-1].append(n)
        else:
            groups.append([n])
    out = []
    for g in groups:
        m = float(np.median(g))
        two = float(f"{m:.2g}")
        out.append(two if abs(two - m) <= 0.01 * m else float(f"{m:.3g}"))
    return out


def _d_label(law: Law | None) -> str:
    return (law.units.get("D") if law is not None else None) or "data"


def plot_fit_quality(
    sparsity, predicted, measured, holdout_mask, path, title: str = "Fit quality"
) -> Path:
    """Predicted against measured loss, coloured by sparsity, held-out points ringed.

    For held-out points pass the prediction of the fit that did not see them."""
    plt = _pyplot()
    S = np.asarray(sparsity, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    meas = np.asarray(measured, dtype=float)
    hold = (
        np.zeros_like(S, dtype=bool)
        if holdout_mask is None
        else np.asarray(holdout_mask, dtype=bool)
    )
    colors = _sparsity_colors(S)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    lo, hi = min(pred.min(), meas.min()), max(pred.max(), meas.max())
    pad = 0.03 * (hi - lo if hi > lo else 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, ls="--", label="y = x")
    for s, c in colors.items():
        m = np.isclose(S, s)
        ax.scatter(meas[m & ~hold], pred[m & ~hold], color=c, s=28, label=f"S = {s:g}")
        if np.any(m & hold):
            ax.scatter(meas[m & hold], pred[m & hold], facecolor="none", edgecolor=c, s=90, lw=1.8)
    if hold.any():
        ax.scatter(
            [], [], facecolor="none", edgecolor="k", s=90, lw=1.8, label="held out (largest N)"
        )
    rel = np.abs(pred - meas) / meas
    ax.set_xlabel("measured validation loss (nats/token)")
    ax.set_ylabel("predicted validation loss (nats/token)")
    subtitle = f"mean |error| {100 * rel[~hold].mean():.2f}%"
    if hold.any():
        subtitle += f", held out {100 * rel[hold].mean():.2f}%"
    ax.set_title(f"{title}: {subtitle}", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_loss_vs_n(
    law: Law, sparsity, n_nonzero, data, loss, path, title: str = "Loss against non-zero parameters"
) -> Path:
    """Measured loss against N per sparsity (one panel per data budget, largest
    first when there are many), with the fitted law drawn through them."""
    plt = _pyplot()
    S = np.asarray(sparsity, dtype=float)
    N = np.asarray(n_nonzero, dtype=float)
    D = np.asarray(data, dtype=float)
    y = np.asarray(loss, dtype=float)
    budgets = sorted(set(np.round(D, 6)))
    shown = budgets if len(budgets) <= 4 else budgets[-4:]
    colors = _sparsity_colors(S)
    fig, axes = plt.subplots(
        1, len(shown), figsize=(4.2 * len(shown), 4.2), sharey=True, squeeze=False
    )
    n_line = np.geomspace(N.min() / 1.5, N.max() * 1.5, 100)
    for ax, d in zip(axes[0], shown):
        at_d = np.isclose(D, d, rtol=1e-6)
        for s, c in colors.items():
            m = at_d & np.isclose(S, s)
            if m.any():
                ax.scatter(N[m], y[m], color=c, s=26, zorder=3)
            ax.plot(
                n_line,
                law.predict(np.full_like(n_line, s), n_line, np.full_like(n_line, d)),
                color=c,
                lw=1.4,
                label=f"S = {s:g}",
            )
        ax.set_xscale("log")
        sizes = nominal_sizes(N)
        if len(sizes) <= 8:  # label the sizes that were run, not crowded minor ticks
            ax.minorticks_off()
            ax.set_xticks(sizes, [_short(n) for n in sizes])
        ax.set_xlabel("non-zero parameters N")
        ax.set_title(f"D = {_short(d)} {_d_label(law)}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("validation loss (nats/token)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title} (points: runs; lines: fitted law)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_sopt_contours(
    law: Law,
    path,
    flops: str = "sparse",
    n_range=None,
    c_range=None,
    start: float = 0.25,
    end: float = 0.75,
    title: str | None = None,
) -> Path:
    """Map of the optimal sparsity over (N, C), with equal-S_opt contours and the
    dense compute-optimal (Chinchilla) line C*(N) = 6 N D*(N)."""
    from sparsescale.laws.planning import chinchilla_data, optimal_sparsity_grid

    plt = _pyplot()
    n_lo, n_hi = n_range or (1e6, 1e10)
    N = np.geomspace(n_lo, n_hi, 160)
    c_star = 6 * N * chinchilla_data(law, N)
    c_lo, c_hi = c_range or (c_star.min() / 3, c_star.max() * 300)
    C = np.geomspace(c_lo, c_hi, 160)
    NN, CC = np.meshgrid(N, C)
    S_opt = optimal_sparsity_grid(law, NN, CC, flops=flops, start=start, end=end, resolution=1200)
    fig, ax = plt.subplots(figsize=(7, 5.4))
    mesh = ax.pcolormesh(NN, CC, S_opt, cmap="magma_r", vmin=0, vmax=1, shading="auto")
    levels = [0.5, 0.75, 0.875, 0.9375]
    cs = ax.contour(NN, CC, S_opt, levels=levels, colors="white", linewidths=1.1)
    ax.clabel(cs, fmt=lambda v: f"S={v:g}", fontsize=8)
    ax.plot(
        N,
        c_star,
        color="tab:cyan",
        lw=2.2,
        ls="--",
        label="dense compute-optimal (Chinchilla) C*(N), dashed",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(c_lo, c_hi)
    ax.set_xlabel("non-zero parameters N")
    ax.set_ylabel(f"training compute C (FLOPs, {flops} accounting)")
    fig.colorbar(mesh, ax=ax, label="optimal sparsity S_opt")
    ax.set_title(title or f"Optimal sparsity ({law.name or 'fitted law'}, {flops} FLOPs)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return Path(path)
