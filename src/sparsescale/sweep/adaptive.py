"""`sparsescale next` on a store or a table: finished runs in, the proposed
runs out as a sweep spec that `sparsescale sweep` runs into the same store.

The criterion lives in laws.design; this module knows where runs come from
(a store's finished runs, or a results table), what they cost (FLOPs per unit
of D calibrated on the store's own records), and how a batch of runs that is
not a cross product becomes a spec (grid.points).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.design import Proposal, Target, candidate_grid, extend_axis, propose
from sparsescale.laws.planning import c_mul
from sparsescale.models.registry import BUDGET_AXES
from sparsescale.units import parse_quantity


@dataclass
class Finished:
    """The runs a design starts from, and what it may propose."""

    points: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # S, N (actual), D, loss
    nominal: np.ndarray  # rows (S, N as asked, D): what a spec names, to skip what is done
    axes: dict[str, list[float]]  # the spec's (or table's) sparsity, n_nonzero and budget values
    budget_axis: str
    tokens_per_unit: float
    spent_flops: float
    spec: (
        dict[str, Any] | None
    )  # the sweep's first spec (family, [train] ...), for writing the next one
    space: str = "log"
    delta: float | None = None


def from_store(path: str | Path, sweep: str | None = None) -> Finished:
    from sparsescale.sweep.store import Store

    path = Path(path)
    if not path.is_file():
        raise SparsescaleError(f"{path}: no such store")
    with Store(path, readonly=True) as store:
        ids = store.sweep_ids(sweep)
        versions = [s for s in store.sweeps() if s["id"] in ids]
        spec = json.loads(versions[0]["spec_json"])
        rows = [
            r
            for r in store.runs(sweep_id=ids, status="finished")
            if r["axes"].get("role") != "dense-pretrain"
        ]
    axis = next((a for a in BUDGET_AXES if spec["grid"].get(a) is not None), "tokens")
    rows = [r for r in rows if math.isfinite(r["final_loss"] or math.nan)]
    if not rows:
        raise SparsescaleError(f"{path}: no finished runs yet; run the sweep first")
    S = np.array([r["sparsity"] for r in rows], float)
    N = np.array([r["n_nonzero"] for r in rows], float)
    D = np.array([r["axes"].get(axis, r[axis]) for r in rows], float)
    y = np.array([r["final_loss"] for r in rows], float)
    nominal = np.column_stack([S, [r["axes"]["n_nonzero"] for r in rows], D])
    # FLOPs per unit of D as the store's runs were charged: the median over runs of
    # recorded training FLOPs / (6 N D c_mul(S)) (1 for token budgets, the tokens of
    # a step or an image otherwise, whatever the family's own accounting adds)
    flops = np.array([r["train_flops_sparse"] or np.nan for r in rows], float)
    per_unit = flops / (6.0 * N * D * c_mul(S, "sparse"))
    per_unit = per_unit[np.isfinite(per_unit) & (per_unit > 0)]
    tpu = float(np.median(per_unit)) if per_unit.size else 1.0
    grid = spec["grid"]
    axes = {
        "sparsity": [float(s) for s in grid["sparsity"]],
        "n_nonzero": [parse_quantity(n, "grid.n_nonzero") for n in grid["n_nonzero"]],
        "data": [parse_quantity(d, f"grid.{axis}") for d in grid[axis]],
    }
    spent = (
        float(np.nansum(flops))
        if np.isfinite(flops).any()
        else float(np.sum(6 * N * D * tpu * c_mul(S)))
    )
    return Finished((S, N, D, y), nominal, axes, axis, tpu, spent, spec)


def from_table(source: str, tokens_per_unit: float | None = None) -> Finished:
    """A results table with the export's columns (sparsity, n_nonzero, tokens |
    examples | steps, loss), or paper:t5 / paper:vit."""
    if source.startswith("paper:"):
        from sparsescale.laws.paper import paper_points, paper_sweep

        sweep = paper_sweep(source)
        S, N, D, y = paper_points(source)
        axis, tpu, space, delta = sweep.budget_axis, sweep.tokens_per_unit, sweep.space, sweep.delta
    else:
        from sparsescale.tables import check_values, evaluate, read_table

        df = read_table(source)
        axis = next((a for a in BUDGET_AXES if a in df.columns), None)
        missing = [c for c in ("sparsity", "n_nonzero", "loss") if c not in df.columns] + (
            [] if axis else ["tokens"]
        )
        if missing:
            raise SparsescaleError(
                f"{source}: needs the columns sparsity, n_nonzero, tokens (or examples or steps) "
                f"and loss, as `sparsescale export` writes them; missing {', '.join(missing)}"
            )
        S, N, D, y = (evaluate(df, c, c, source) for c in ("sparsity", "n_nonzero", axis, "loss"))
        for values, col, kw in (
            (S, "sparsity", {"unit_interval": True}),
            (N, "n_nonzero", {"positive": True}),
            (D, axis, {"positive": True}),
            (y, "loss", {"positive": True}),
        ):
            check_values(values, col, source, f"column {col!r}", **kw)
        tpu, space, delta = 1.0, "log", None
    tpu = tokens_per_unit if tokens_per_unit is not None else tpu
    axes = {
        "sparsity": sorted(set(S.tolist())),
        "n_nonzero": sorted(set(N.tolist())),
        "data": sorted(set(D.tolist())),
    }
    spent = float(np.sum(6 * N * D * tpu * c_mul(S)))
    return Finished(
        (S, N, D, y), np.column_stack([S, N, D]), axes, axis, tpu, spent, None, space, delta
    )


def default_candidates(finished: Finished) -> dict[str, list[float]]:
    """The axes extended one step beyond each end (laws.design.extend_axis)."""
    return {k: extend_axis(v, k) for k, v in finished.axes.items()}


def budget_flops(text: str, finished: Finished, what: str = "--budget") -> float:
    """'1e18' (FLOPs) or '25%' (of the compute the finished runs took)."""
    t = str(text).strip()
    if t.endswith("%"):
        share = parse_quantity(t[:-1], what)
        if not share > 0:
            raise SparsescaleError(
                f"{what}: {text!r} must be a positive share of the compute spent"
            )
        return finished.spent_flops * share / 100.0
    value = parse_quantity(t, what)
    if not value > 0:
        raise SparsescaleError(
            f"{what}: {text!r} must be a positive number of FLOPs (or a share like 25%)"
        )
    return value


def design(
    finished: Finished,
    target: Target,
    budget: float,
    axes: dict[str, list[float]] | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> Proposal:
    axes = axes or default_candidates(finished)
    # counts the spec can name: whole N and D
    grid = candidate_grid(
        axes["sparsity"],
        [round(n) for n in axes["n_nonzero"]],
        [round(d) for d in axes["data"]],
        done=finished.nominal,
    )
    if finished.spec is not None:
        grid = runnable(finished, grid)
    from sparsescale.laws.points import FitOptions, Points

    options = FitOptions(
        space=finished.space,
        delta=finished.delta,
        seed=seed,
        tokens_per_unit=finished.tokens_per_unit,
    )
    return propose(Points(*finished.points), target, grid, budget, options, n_boot=n_boot)


def runnable(finished: Finished, grid: np.ndarray) -> np.ndarray:
    """The candidates the sweep's family can train (an axis extended one step
    down may fall below the family's smallest model): each is planned and
    checked as `sparsescale sweep` would, and dropped if the check refuses it."""
    from sparsescale.sweep.spec import check_runs, expand, spec_from_dict

    keep = []
    for row in grid:
        one = next_spec(finished, None, [(float(row[0]), int(row[1]), int(row[2]))])
        try:
            check_runs(expand(spec_from_dict(one, "candidate"), "candidate"), "candidate")
        except SparsescaleError:
            continue
        keep.append(row)
    return np.array(keep, dtype=float).reshape(-1, 3)


def next_spec(
    finished: Finished, proposal: Proposal | None, runs: list[tuple[float, int, int]] | None = None
) -> dict[str, Any]:
    """The sweep spec (as a dict) that trains exactly the proposed runs: the
    sweep's own spec with its grid replaced by the runs' values and grid.points."""
    if finished.spec is None:
        raise SparsescaleError(
            "--out: a results table has no sweep spec to continue; give --spec SPEC.toml"
        )
    if runs is None:
        if proposal is None or not proposal.runs:
            raise SparsescaleError("no run fits the budget: raise --budget")
        runs = [
            (r["sparsity"], int(round(r["n_nonzero"])), int(round(r["data"])))
            for r in proposal.runs
        ]
    spec = json.loads(json.dumps(finished.spec))
    axis = finished.budget_axis
    grid = {k: v for k, v in spec["grid"].items() if v is not None and k not in BUDGET_AXES}
    grid.update(
        {
            "sparsity": sorted({s for s, _, _ in runs}),
            "n_nonzero": sorted({n for _, n, _ in runs}),
            axis: sorted({d for _, _, d in runs}),
            "seeds": spec["grid"].get("seeds", [0])[:1],
            "patterns": ["unstructured"],
            "points": [{"sparsity": s, "n_nonzero": n, axis: d} for s, n, d in runs],
        }
    )
    for key in (
        "from_dense",
        "dense_tokens",
        "init_from_dense",
        "dense_prefix",
    ):  # old specs: the old names
        grid.pop(key, None)  # the proposed runs train from scratch
    spec["grid"] = grid
    return spec


def spec_for_table(spec_path: str | Path) -> dict[str, Any]:
    """A sweep spec file's contents (validated) to continue a table's runs with."""
    from sparsescale.sweep.spec import load_spec

    return load_spec(spec_path).model_dump(mode="json")


def to_toml(obj: dict[str, Any]) -> str:
    """A spec dict as TOML (None values left out: TOML has no null)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return (
                repr(v)
                if isinstance(v, int) or math.isfinite(v)
                else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
            )
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return (
                "{ "
                + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items() if x is not None)
                + " }"
            )
        raise SparsescaleError(f"spec: cannot write {type(v).__name__} value {v!r} as TOML")

    lines = [
        f"{json.dumps(k)} = {value(v)}"
        for k, v in obj.items()
        if v is not None
        and not isinstance(v, dict)
        and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))
    ]
    for k, v in obj.items():
        if isinstance(v, dict):
            lines += ["", f"[{json.dumps(k)}]"] + [
                f"{json.dumps(a)} = {value(b)}" for a, b in v.items() if b is not None
            ]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines += ["", f"[[{json.dumps(k)}]]"] + [
                    f"{json.dumps(a)} = {value(b)}" for a, b in item.items() if b is not None
                ]
    return "\n".join(lines) + "\n"
