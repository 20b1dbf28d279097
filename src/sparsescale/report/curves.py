"""Validation-loss curves of a sweep's runs: one panel per non-zero size N,
colour by sparsity, line style by data budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsescale.atomic import save_figure
from sparsescale.report.render import short


def _budget_ticks(ax) -> None:
    """Log x axis labelled only at 1, 2 and 5 times powers of ten, in short
    form ('200k'): matplotlib's default labels every minor tick of a narrow
    log range in scientific notation, and the labels run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
    ax.xaxis.set_minor_locator(NullLocator())


def plot_loss_curves(
    records: list[dict[str, Any]], path: str | Path, budget_unit: str = "tokens"
) -> None:
    """records: dicts with sparsity, n_nonzero, budget (D), status and curve
    (a list of {step, tokens, val_loss}). Writes a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n_nonzero_target"] for r in records})
    sparsities = sorted({r["sparsity"] for r in records})
    budgets = sorted({r["budget"] for r in records})
    cmap = plt.get_cmap("viridis")
    colour = {s: cmap(i / max(1, len(sparsities) - 1) * 0.9) for i, s in enumerate(sparsities)}
    styles = ["-", "--", ":", "-.", (0, (6, 1, 1, 1, 1, 1)), (0, (1, 3))]
    style = {d: styles[i % len(styles)] for i, d in enumerate(budgets)}

    ncols = max(1, len(sizes))
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.8), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for r in sorted(
            (r for r in records if r["n_nonzero_target"] == n),
            key=lambda r: (r["sparsity"], r["budget"]),
        ):
            pts = [p for p in r["curve"] if p.get("val_loss") is not None]
            if not pts:
                continue
            x = [p.get("tokens") or p.get("step") for p in pts]
            ax.plot(
                x,
                [p["val_loss"] for p in pts],
                style[r["budget"]],
                color=colour[r["sparsity"]],
                lw=1.4,
                marker="x" if r["status"] == "diverged" else None,
            )
        _budget_ticks(ax)
        ax.set_title(f"N = {n:,.0f} non-zeros")
        ax.set_xlabel(f"training {budget_unit} seen")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation loss (nats)")
    handles = [plt.Line2D([], [], color=colour[s], lw=2, label=f"S = {s:g}") for s in sparsities]
    handles += [
        plt.Line2D([], [], color="grey", ls=style[d], label=f"D = {d:,.0f} {budget_unit}")
        for d in budgets
    ]
    axes[0][-1].legend(handles=handles, fontsize=8, loc="upper right")
    fig.suptitle("Loss curves (colour: sparsity, line style: data budget)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
