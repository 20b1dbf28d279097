"""`sparsescale next` and `sweep --adaptive` through the real CLI."""

import json
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from sparsescale.laws.design import run_flops
from sparsescale.sweep.spec import expand, load_spec
from sparsescale.sweep.store import Store

TINY = """
name = "tiny"
family = "gpt"
[grid]
sparsity = [0.0, 0.5]
n_nonzero = ["8k", "16k"]
tokens = ["2k", "4k"]
[train]
batch = 8
seq_len = 32
eval_tokens = 1024
eval_every = 8
"""
T5 = ["paper:t5", "--target", "sopt:N=1e8,C=1e20"]


def run_cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-c", "from sparsescale.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_two_adaptive_rounds_of_a_tiny_real_sweep(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    store = tmp_path / "s.sqlite"
    r = run_cli(
        "sweep",
        spec,
        "--store",
        store,
        "--workers",
        "2",
        "--adaptive",
        "2",
        "--target",
        "equivalent-size:S=0.5",
        "--budget",
        "20%",
        "--next-bootstrap",
        "40",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("adaptive round") == 2
    with Store(store, readonly=True) as s:
        runs = [x for x in s.runs() if x["status"] == "finished"]
    seen = {(x["sparsity"], x["axes"]["n_nonzero"], x["axes"]["tokens"]) for x in runs}
    expected = {(s_, n, d) for s_ in (0.0, 0.5) for n in (8000, 16000) for d in (2000, 4000)}
    for k in (1, 2):  # each round's spec names exactly the runs it added to the same store
        path = tmp_path / f"s-adaptive-{k}.toml"
        points = {
            (p["sparsity"], p["n_nonzero"], p["tokens"])
            for p in tomllib.loads(path.read_text())["grid"]["points"]
        }
        assert points and not points & expected
        assert {
            (x.axes["sparsity"], x.axes["n_nonzero"], x.axes["tokens"])
            for x in expand(load_spec(path))
        } == points
        expected |= points
    assert seen == expected
    # a second invocation trains nothing new in the base spec and still runs its rounds from the
    # store
    again = run_cli(
        "next", store, "--target", "equivalent-size:S=0.5", "--budget", "1e6", "--bootstrap", "20"
    )
    assert again.returncode == 0 and "no candidate run fits" in again.stdout, again.stderr


def test_next_on_the_paper_t5_sweep_writes_a_spec_sweep_can_run(tmp_path):
    spec = tmp_path / "base.toml"
    spec.write_text(TINY)
    out = tmp_path / "next.toml"
    r = run_cli(
        "next",
        *T5,
        "--budget",
        "5e18",
        "--bootstrap",
        "30",
        "--spec",
        spec,
        "--out",
        out,
        "--json",
        "--sparsity",
        "0,0.5,0.875",
        "--params",
        "1e6:4e6:3",
        "--data",
        "1e5,2e5",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert 0 < got["spent_flops"] <= got["budget_flops"] == 5e18
    assert 0 < got["expected_width"] < got["width"]
    runs = got["runs"]
    flops = run_flops(
        [x["sparsity"] for x in runs],
        [x["n_nonzero"] for x in runs],
        [x["data"] for x in runs],
        65536.0,
    )
    assert np.allclose(flops, [x["flops"] for x in runs])
    assert {x["sparsity"] for x in runs} <= {0.0, 0.5, 0.75, 0.875}
    planned = {
        (x.axes["sparsity"], x.axes["n_nonzero"], x.axes["tokens"]) for x in expand(load_spec(out))
    }
    assert planned == {(x["sparsity"], round(x["n_nonzero"]), round(x["data"])) for x in runs}


@pytest.mark.parametrize(
    "args, message",
    [
        ([*T5, "--budget", "1e18", "--target", "sop:N=1"], "--target: unknown target"),
        (
            ["paper:t5", "--target", "sopt:N=1e8", "--budget", "1e18"],
            "--target: 'sopt:N=1e8' lacks C",
        ),
        (
            ["paper:t5", "--target", "equivalent-size:S=1.5", "--budget", "1e18"],
            "--target: S=1.5 is outside",
        ),
        ([*T5, "--budget", "-3"], "--budget: '-3' must be a positive"),
        ([*T5, "--budget", "lots"], "--budget: 'lots' is not a number"),
        ([*T5, "--budget", "1e18", "--sparsity", "0,1.2"], "--sparsity: sparsity 1.2 is outside"),
        (
            [*T5, "--budget", "1e18", "--params", "1e8:1e6:3"],
            "--params: range '1e8:1e6:3' needs LOW <= HIGH",
        ),
        ([*T5, "--budget", "1e18", "--data", "-5"], "--data: -5 must be positive"),
        ([*T5, "--budget", "1e18", "--spec", "nope.toml"], "--spec nope.toml: no such file"),
        ([*T5, "--budget", "1e18", "--sweep", "x"], "--sweep: only meaningful for a store"),
        (
            [*T5, "--budget", "1e18", "--tokens-per-unit", "-1"],
            "--tokens-per-unit: must be positive",
        ),
        ([*T5, "--budget", "1e18", "--bootstrap", "3"], "--bootstrap: must be between 20"),
        (
            [*T5, "--budget", "1e18", "--out", "next.toml"],
            "--out: a results table has no sweep spec",
        ),
        (
            ["missing.sqlite", "--target", "sopt:N=1e8,C=1e20", "--budget", "1e18"],
            "missing.sqlite: no such store",
        ),
    ],
)
def test_bad_next_flags_exit_2_with_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = run_cli("next", *args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "next.toml").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--adaptive", "-1"], "--adaptive: must be between 0 and 100"),
        (["--adaptive", "2"], "--adaptive: needs --target and --budget"),
        (["--target", "sopt:N=1e8,C=1e20"], "--target: only meaningful with --adaptive"),
        (["--budget", "1e18"], "--budget: only meaningful with --adaptive"),
        (["--adaptive", "1", "--target", "x:y", "--budget", "1e18"], "--target: unknown target"),
        (
            ["--adaptive", "1", "--target", "equivalent-size:S=0.5", "--budget", "0"],
            "--budget: '0' must be a positive",
        ),
        (
            [
                "--adaptive",
                "1",
                "--target",
                "equivalent-size:S=0.5",
                "--budget",
                "1e18",
                "--next-bootstrap",
                "1",
            ],
            "--bootstrap: must be between 20",
        ),
        (
            [
                "--adaptive",
                "1",
                "--target",
                "equivalent-size:S=0.5",
                "--budget",
                "1e18",
                "--dry-run",
            ],
            "--adaptive: cannot be planned by --dry-run",
        ),
    ],
)
def test_bad_adaptive_flags_exit_2_before_training(tmp_path, extra, message):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    r = run_cli("sweep", spec, "--store", tmp_path / "s.sqlite", *extra)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "s.sqlite").exists()
