"""`sparsescale bench-kernels`: measure sparse-kernel speedups on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import console, require_torch
from sparsescale.errors import SparsescaleError


def _shapes(text: str) -> tuple[tuple[int, int, int], ...]:
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        dims = part.lower().split("x")
        if len(dims) != 3 or not all(d.strip().isdigit() and int(d) > 0 for d in dims):
            raise SparsescaleError(
                f"--shapes: {part.strip()!r} is not TOKENSxINxOUT with positive whole sizes (e.g. "
                "512x512x2048)"
            )
        out.append(tuple(int(d) for d in dims))
    if not out:
        raise SparsescaleError("--shapes: give at least one TOKENSxINxOUT")
    return tuple(out)


def _sparsities(text: str) -> tuple[float, ...]:
    from sparsescale.units import parse_quantity

    values = tuple(parse_quantity(p, "--sparsities") for p in text.split(",") if p.strip())
    if not values:
        raise SparsescaleError("--sparsities: give at least one value in (0, 1)")
    for s in values:
        if not 0.0 < s < 1.0:
            raise SparsescaleError(f"--sparsities: {s:g} is outside (0, 1)")
    return values


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise SparsescaleError(f"--device: expected cpu, cuda or auto, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SparsescaleError("--device cuda: torch.cuda.is_available() is False on this machine")
    return name


@app.command("bench-kernels")
def bench_kernels(
    out: Path = typer.Option(
        ..., "--out", help="Speedups JSON to write (for `optimal --flops measured --speedups`)."
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    shapes: Optional[str] = typer.Option(
        None,
        "--shapes",
        help="TOKENSxINxOUT list [cpu: 512x512x2048,512x2048x512; cuda: GPT-2 and ViT-L MLP "
        "shapes at 8192 tokens].",
    ),
    sparsities: str = typer.Option(
        "0.5,0.75,0.9,0.95,0.99", "--sparsities", help="Unstructured sparsities to time."
    ),
    patterns: str = typer.Option(
        "unstructured,2:4",
        "--patterns",
        help="unstructured and/or n:m (n kept in every m along the input dim; 2:4T also along the "
        "output dim); 2:4 and 2:4T need CUDA.",
    ),
    repeats: int = typer.Option(
        5, "--repeats", help="Timed samples per variant (median reported)."
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="torch CPU threads [torch's default]."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, masks and inputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the written document."),
) -> None:
    """Time forward + backward + optimizer steps of linear layers, dense against
    sparse kernels, and write speedup = time(dense step) / time(sparse step)
    per pattern and sparsity.

    Example: sparsescale bench-kernels --out cpu-speedups.json --threads 1
    """
    require_torch("bench-kernels")
    from sparsescale.atomic import check_output
    from sparsescale.laws.costs import is_speedups_file

    check_output(out, what="--out", ours=is_speedups_file)
    if repeats < 1:
        raise SparsescaleError(f"--repeats: must be >= 1, got {repeats}")
    if threads is not None and threads < 1:
        raise SparsescaleError(f"--threads: must be >= 1, got {threads}")
    pattern_list = tuple(p.strip() for p in patterns.split(",") if p.strip())
    from sparsescale.laws.costs import canonical_pattern

    for p in pattern_list:
        canonical_pattern(p, "--patterns")
    if not pattern_list:
        raise SparsescaleError("--patterns: give unstructured and/or n:m")
    parsed_shapes = _shapes(shapes) if shapes is not None else None
    parsed_sparsities = _sparsities(sparsities)

    import torch

    from sparsescale.atomic import write_json
    from sparsescale.kernels.bench import (
        CPU_SHAPES,
        CUDA_SHAPES,
        BenchSettings,
        memory_floor,
        run_bench,
    )
    from sparsescale.resources import check_fits

    dev = _device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    settings = BenchSettings(
        shapes=parsed_shapes or (CUDA_SHAPES if dev == "cuda" else CPU_SHAPES),
        sparsities=parsed_sparsities,
        patterns=pattern_list,
        device=dev,
        repeats=repeats,
        seed=seed,
    )
    need, shape = memory_floor(settings)  # refused before anything is allocated
    check_fits(
        need,
        f"--shapes {'x'.join(map(str, shape))}",
        dev,
        "inputs, weights, gradients and AdamW moments of the dense and sparse variants",
        force_flag=None,
    )
    quiet = as_json
    doc = run_bench(
        settings, progress=None if quiet else (lambda msg: typer.echo(f"timing {msg}", err=True))
    )
    write_json(out, doc)
    if as_json:
        print(json.dumps(doc))
        return
    _print(doc, out)


def _print(doc: dict, out: Path) -> None:
    from rich.table import Table

    m = doc["machine"]
    table = Table(
        "pattern",
        "sparsity",
        "speedup (dense/sparse step)",
        title=f"{m.get('device_name', m['processor'])}, torch {m['torch']}",
    )
    for pattern, entries in doc["speedups"].items():
        for s, v in entries.items():
            table.add_row(pattern, s, f"{v:.3f}x")
    con = console()
    con.print(table)
    for pattern, why in doc["skipped"].items():
        con.print(f"skipped {pattern}: {why}")
    con.print(f"wrote {out}")
