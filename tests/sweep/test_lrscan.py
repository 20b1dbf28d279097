"""The learning-rate axis: grid.lr plans one run per lr, and every reader of the
store (export, report) keeps each grid point's lowest-loss run, says which lr
won, and warns when it sits at an edge of the scan."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_runner import toy_loss  # noqa: E402

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.report.build import build_report  # noqa: E402
from sparsescale.sweep.export import result_rows  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

LRS = [0.005, 0.01, 0.02, 0.04]
# the best lr halves as N doubles (on the scan's grid), so the two end sizes win at its edges
BEST_LR = {25_000: 0.04, 50_000: 0.02, 100_000: 0.01, 200_000: 0.005}
TRUE = {"bS": 0.7, "bN": 0.3, "aD": 2e4, "bD": 0.4, "c": 0.5}


def lr_loss(s, n, d, lr):
    """toy_loss at the best lr, plus 0.05 nats per squared doubling away from it."""
    return toy_loss(s, n, d) + 0.05 * math.log2(lr / BEST_LR[n]) ** 2


def spec(**grid):
    return spec_from_dict(
        {
            "family": "gpt",
            "grid": {
                "sparsity": [0.0, 0.5, 0.75, 0.875],
                "n_nonzero": ["25k", "50k", "100k", "200k"],
                "tokens": ["100k", "400k", "1.6M"],
                **grid,
            },
        }
    )


def test_grid_lr_plans_one_run_per_lr_and_leaves_unscanned_sweeps_alone():
    plain = expand(spec())
    scanned = expand(spec(lr=[0.04, 0.005, 0.01, 0.02]))
    assert len(scanned) == len(LRS) * len(plain)
    assert all("lr" not in r.axes and "lr" not in r.config for r in plain)
    by_point: dict[tuple, list[float]] = {}
    for r in scanned:
        assert r.config["lr"] == r.axes["lr"]
        key = tuple(sorted((k, v) for k, v in r.axes.items() if k != "lr"))
        by_point.setdefault(key, []).append(r.axes["lr"])
    assert len(by_point) == len(plain) and all(sorted(v) == LRS for v in by_point.values())
    assert len({r.config_hash for r in scanned}) == len(scanned)


@pytest.mark.parametrize(
    "raw, expect",
    [
        ({"grid": {"lr": []}}, "grid.lr: Value error, grid.lr is empty"),
        ({"grid": {"lr": [0.01, -1]}}, "learning rate -1.0 must be a finite number > 0"),
        ({"grid": {"lr": [0.01, 0.01]}}, "a learning rate is listed twice"),
        (
            {"grid": {"lr": [0.01]}, "train": {"lr": 0.1}},
            "train.lr: the grid scans lr (grid.lr); set it in one place",
        ),
        (
            {"grid": {"lr": [0.01]}, "override": [{"n_nonzero": "25k", "set": {"lr": 0.1}}]},
            "'lr' is set by grid.lr",
        ),
        (
            {"override": [{"lr": 0.01, "set": {"batch": 8}}]},
            "override.lr: matches the lr axis, but the grid has no grid.lr",
        ),
    ],
)
def test_bad_lr_axes_are_one_line(raw, expect):
    base = {"family": "gpt", "grid": {"n_nonzero": ["25k"], "tokens": ["100k"]}}
    merged = {**base, **{k: v for k, v in raw.items() if k != "grid"}}
    merged["grid"] = {**base["grid"], **raw.get("grid", {})}
    with pytest.raises(SparsescaleError) as err:
        spec_from_dict(merged, source="s.toml")
    assert str(err.value).startswith("s.toml: ") and expect.split("Value error, ")[-1] in str(
        err.value
    )


def test_override_matches_an_lr():
    s = spec_from_dict(
        {
            "family": "gpt",
            "grid": {"n_nonzero": ["25k"], "tokens": ["100k"], "lr": [0.01, 0.02]},
            "override": [{"lr": 0.02, "set": {"batch": 8}}],
        }
    )
    assert {r.axes["lr"]: r.config.get("batch") for r in expand(s)} == {0.01: None, 0.02: 8}


@pytest.fixture(scope="module")
def lr_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("lr") / "lr.sqlite"
    sp = spec(lr=LRS)
    runs = expand(sp)
    with Store(path) as store:
        store.add_sweep("lr", sp.model_dump(mode="json"), runs, path.parent / "runs")
        for run in runs:
            c = run.config
            loss = lr_loss(c["sparsity"], c["params"], c["tokens"], c["lr"])
            status = "finished"
            if c["params"] == 50_000 and c["lr"] == 0.04:  # the largest lr diverges at one size
                status, loss = "diverged", float("nan")
            store.mark_running(run.config_hash)
            store.record_result(
                run.config_hash,
                {
                    "status": status,
                    "sparsity": c["sparsity"],
                    "pattern": None,
                    "n_nonzero": c["params"],
                    "tokens": c["tokens"],
                    "final_loss": loss,
                    "wall_s": 1.0,
                    "curve": [
                        {"step": s, "tokens": s * c["tokens"] // 4, "val_loss": loss + 1.0 / s}
                        for s in (1, 2, 3, 4)
                    ],
                },
            )
    return path


def test_export_keeps_each_points_best_lr(lr_store):
    with Store(lr_store, readonly=True) as store:
        rows = result_rows(store)
    assert len(rows) == 4 * 4 * 3
    for r in rows:
        brute = min(
            lr_loss(r["sparsity"], r["n_nonzero"], r["tokens"], lr)
            for lr in LRS
            if not (r["n_nonzero"] == 50_000 and lr == 0.04)
        )
        assert r["loss"] == pytest.approx(brute, abs=1e-12)
        assert r["lr"] == BEST_LR[r["n_nonzero"]]


def test_report_fits_the_winners_and_warns_at_the_edges(lr_store, tmp_path):
    rep = build_report(lr_store, tmp_path / "out", n_boot=0, seed=0, show_progress=False)
    assert rep.n_points == 48
    for name, value in TRUE.items():
        assert rep.coefficients[name] == pytest.approx(value, rel=0.03), name
    edges = [w for w in rep.warnings if w.startswith("lr scan:")]
    # 25k wins at 0.04 (largest), 200k at 0.005 (smallest): 12 points each; 50k's 0.04 diverged but
    # 0.02 is interior
    assert len(edges) == 2
    assert "at 12 of 48 points the best lr is the smallest scanned (S=0 N=200,000" in edges[0]
    assert "at 12 of 48 points the best lr is the largest scanned (S=0 N=25,000" in edges[1]
    assert {row["lr"] for row in rep.lr_scan} == set(BEST_LR.values())
    assert sum(row["edge"] for row in rep.lr_scan) == 24
    assert all(
        row["edge"] == (row["axes"]["n_nonzero"] in (25_000, 200_000)) for row in rep.lr_scan
    )
    page = rep.html.read_text()
    assert "Learning rate per point" in page and "edge" in page


def test_export_cli_has_the_lr_column(lr_store, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "export",
            str(lr_store),
            "--csv",
            str(tmp_path / "x.csv"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "x.csv")
    assert len(df) == 48 and sorted(df["lr"].unique()) == sorted(BEST_LR.values())
    assert np.all(df.groupby("n_nonzero")["lr"].nunique() == 1)


def test_a_bad_lr_axis_from_the_cli_is_one_line_and_writes_nothing(tmp_path):
    spec_file = tmp_path / "bad.toml"
    spec_file.write_text(
        'family = "gpt"\n[grid]\nn_nonzero = ["25k"]\ntokens = ["100k"]\nlr = [0.01, 0]\n'
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "sweep",
            str(spec_file),
            "--dry-run",
            "--store",
            str(tmp_path / "s.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (
        "bad.toml: grid.lr" in r.stderr
        and "learning rate 0.0 must be a finite number > 0" in r.stderr
    )
    assert not (tmp_path / "s.sqlite").exists()


def test_fit_reads_a_store_as_its_export(lr_store, tmp_path):
    """`fit STORE` fits the best-lr runs, the same points as `fit EXPORT.csv`."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    cols = [
        "--sparsity",
        "sparsity",
        "--params",
        "n_nonzero",
        "--data",
        "tokens",
        "--loss",
        "loss",
        "--json",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "sparsescale", "fit", str(lr_store), *cols],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    import json

    got = json.loads(r.stdout)
    assert got["n_points"] == 48
    coeffs = got["coefficients"]
    for name, value in TRUE.items():
        assert coeffs[name] == pytest.approx(value, rel=0.03), name
