"""The output rule, for every command that writes: a path that does not exist,
or that holds what this command wrote before, never an input and never
someone's file, all checked before any work. Each refusal: one line, exit 2,
and the folder byte-identical afterwards. Refusals run batched in one
subprocess (hostile_helpers.cli_batch); what must really write runs alone."""

from __future__ import annotations

import json

import numpy as np
from hostile_helpers import cli, cli_batch, one_line, tree

COLUMNS = ("--sparsity", "sparsity", "--params", "n", "--data", "d", "--loss", "loss")


def sweep_csv(path):
    """A small sweep drawn from the paper's T5 law with 1% log noise."""
    rng = np.random.default_rng(0)
    S = rng.choice([0.0, 0.5, 0.75], 24)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), 24))
    D = np.exp(rng.uniform(np.log(1e3), np.log(1e6), 24))
    y = (16.8 * (1 - S) ** 0.722 + 45.0) * N**-0.245 + (1.05e4 / D) ** 0.203 + 0.651
    with open(path, "w") as f:
        f.write("sparsity,n,d,loss\n")
        np.savetxt(
            f,
            np.column_stack([S, N, D, y * np.exp(rng.normal(0, 0.01, 24))]),
            delimiter=",",
            fmt="%.10g",
        )
    return path


def test_no_command_writes_over_a_file_it_did_not_write(tmp_path, store):
    """bench-kernels over a store, a law or a table; fit --out over a table;
    export over someone's Parquet table; report into a foreign folder;
    fit --plot over a foreign file beside it (its second figure) or over its own
    --out; optimal --plot over an image; sweep storage over the store or a file
    or a foreign folder; a demo over a foreign report folder or store."""
    data = sweep_csv(tmp_path / "good.csv")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "law.json").write_text(
        json.dumps({"form": "sparse", "name": "x", "coefficients": {"c": 1.0}})
    )
    (tmp_path / "f-loss-vs-n.png").write_bytes(b"\x89PNG\r\n\x1a\n someone's figure")
    (tmp_path / "mine.png").write_bytes(b"\x89PNG\r\n\x1a\n another")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "demo" / "report").mkdir(parents=True)
    (tmp_path / "demo" / "report" / "index.html").write_text("mine")
    import pandas as pd

    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "data.parquet")  # someone's table
    (tmp_path / "demo2").mkdir()
    (tmp_path / "demo2" / "quick.sqlite").write_text("not a store")
    before = tree(tmp_path)
    shapes = ("--shapes", "8x8x8", "--repeats", "1")
    cases = [
        (("bench-kernels", "--out", store, *shapes), "--out", "did not write"),
        (("bench-kernels", "--out", "law.json", *shapes), "--out", "did not write"),
        (("bench-kernels", "--out", "table.csv", *shapes), "--out", "did not write"),
        (("fit", data, *COLUMNS, "--out", "table.csv"), "--out table.csv", "did not write"),
        (("fit", data, *COLUMNS, "--plot", "f.png"), "--plot f-loss-vs-n.png", "did not write"),
        (
            ("fit", data, *COLUMNS, "--plot", "g.png", "--out", "g.png"),
            "--plot g.png",
            "also the output of --out",
        ),
        (
            ("optimal", "--law", "t5-c4", "--contours", "--plot", "mine.png"),
            "--plot mine.png",
            "did not write",
        ),
        (
            ("sweep", "quick", "--store", "s.sqlite", "--storage", "s.sqlite"),
            "--storage s.sqlite",
            "--store",
        ),
        (
            ("sweep", "quick", "--store", "s.sqlite", "--storage", "table.csv", "--dry-run"),
            "--storage",
            "not a folder",
        ),
        (
            ("sweep", "quick", "--store", "s.sqlite", "--storage", "notes", "--dry-run"),
            "--storage notes",
            "did not write",
        ),
        (("sweep", "quick", "--store", "table.csv"), "table.csv", "not a sparsescale sweep store"),
        (("export", store, "--parquet", "data.parquet"), "--parquet data.parquet", "did not write"),
        (("report", store, "--out", "notes"), "--out notes", "did not write"),
        (("demo", "--out", "demo"), "--out demo/report", "did not write"),
        (("demo", "--out", "demo2"), "demo2/quick.sqlite", "not a sparsescale sweep store"),
    ]
    for done, (argv, *needles) in zip(cli_batch(*(c[0] for c in cases), cwd=tmp_path), cases):
        one_line(done, 2, *needles)
    assert tree(tmp_path) == before  # nothing written, created or locked


def test_a_command_replaces_its_own_outputs(tmp_path):
    """The other half of the rule: a second run replaces what the first wrote
    (a law by its keys, figures by the tag save_figure puts in them)."""
    data = sweep_csv(tmp_path / "good.csv")
    for _ in range(2):
        done = cli(
            "fit",
            data,
            *COLUMNS,
            "--out",
            tmp_path / "law.json",
            "--plot",
            tmp_path / "f.svg",
            "--json",
        )
        assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "law.json").read_text())["form"] == "sparse"
    assert b"sparsescale" in (tmp_path / "f-loss-vs-n.svg").read_bytes()
    out = tmp_path / "speedups.json"  # an earlier speedups file (by its format key) is replaced
    out.write_text(json.dumps({"format": "sparsescale-speedups/1", "speedups": {}}))
    done = cli(
        "bench-kernels",
        "--out",
        out,
        "--shapes",
        "8x8x8",
        "--repeats",
        "1",
        "--sparsities",
        "0.5",
        "--patterns",
        "unstructured",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["speedups"]["unstructured"]
