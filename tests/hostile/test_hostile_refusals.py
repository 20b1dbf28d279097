"""The second hostile pass: inputs that used to end in an internal error, in a
number nobody can use, in a message naming the wrong flag, or in folders left
behind. Each: one line naming the flag or file, exit 2, no traceback, and the
folder it ran in unchanged (no store, lock or run folder appears). Refusals
are batched in one subprocess each (hostile_helpers.cli_batch)."""

from __future__ import annotations

import json
import re

import pytest
from hostile_helpers import cli, cli_batch, one_line, tree

T5 = {"aS": 16.8, "bS": 0.722, "cS": 45.0, "bN": 0.245, "aD": 1.05e4, "bD": 0.203, "c": 0.651}
TINY_RUN = (
    "--steps",
    "2",
    "--batch",
    "4",
    "--seq-len",
    "32",
    "--threads",
    "1",
    "--eval-tokens",
    "256",
    "--quiet",
)


def law(path, form="sparse", fit=None, **coefficients):
    coefs = (
        dict(T5)
        if form == "sparse"
        else {"A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28, "E": 1.7}
    )
    obj = {
        "form": form,
        "name": path.stem,
        "coefficients": {**coefs, **coefficients},
        "units": {"N": "non-zero parameters", "D": "tokens"},
        "tokens_per_unit": 1,
    }
    if fit is not None:
        obj["fit"] = fit
    path.write_text(json.dumps(obj))
    return path


def pattern_laws(path):
    """A base law with two pattern laws under spellings of one pattern, 2:4 and 02:04."""
    base = {k: T5[k] for k in ("bN", "aD", "bD", "c")} | {"A": T5["aS"] + T5["cS"]}
    entry = {"sparsity": 0.5, "law": {"form": "nm", "coefficients": dict(T5)}}
    obj = {
        "form": "sparse",
        "name": "p",
        "coefficients": dict(T5),
        "units": {"D": "tokens"},
        "tokens_per_unit": 1,
        "pattern_laws": {"base": base, "patterns": {"2:4": entry, "02:04": entry}},
    }
    path.write_text(json.dumps(obj))
    return path


def check_all(cases, cwd):
    """Run every (argv, *needles) case in one subprocess; each must be one line and exit 2."""
    before = tree(cwd)
    for done, (argv, *needles) in zip(cli_batch(*(c[0] for c in cases), cwd=cwd), cases):
        line = one_line(done, 2, *needles)
        assert "internal error" not in line, line
    assert tree(cwd) == before


def test_law_commands_refuse_what_they_cannot_use(tmp_path):
    """fit, predict and optimal (no torch): each case used to be an internal
    error, an inf loss or a silently dropped value."""
    rows = ["sparsity,n,d,loss"] + [
        f"{s},{n:g},{d:g},{3 + s}" for s in (0, 0.5) for n in (1e6, 1e7) for d in (1e4, 1e5)
    ]
    (tmp_path / "runs.csv").write_text("\n".join(rows) + "\n")
    cols = ("--sparsity", "sparsity", "--params", "n", "--data", "d", "--loss", "loss")
    law(tmp_path / "avg.json", form="dense")
    (tmp_path / "avg.json").write_text(
        (tmp_path / "avg.json").read_text().replace('"dense"', '"avgparam"')
    )
    for i, fraction in enumerate(([], [0.1, 0.2, 0.3], "x", None, [0.6, 0.2], [True, 0.5])):
        law(tmp_path / f"fd{i}.json", fit={"from_dense": {"dense_fraction": fraction}})
    law(tmp_path / "huge.json", aD=1e308)
    law(tmp_path / "inf.json")
    (tmp_path / "inf.json").write_text(
        (tmp_path / "inf.json").read_text().replace("10500.0", "Infinity")
    )
    pattern_laws(tmp_path / "patterns.json")
    plan = ("--params", "1e7", "--compute")
    cases = [
        (("fit", "runs.csv", *cols, "--form", "nm", "--base", "avg.json"), "--base", "avgparam"),
        (("fit", "runs.csv", *cols, "--tokens-per-unit", "1e-320"), "--tokens-per-unit", "1e-320"),
        *[
            (
                ("from-dense", "--law", f"fd{i}.json", "--dense", "1e7,1e9", "--compute", "1x"),
                f"--law fd{i}.json",
                "dense_fraction",
            )
            for i in range(6)
        ],
        (("optimal", "--law", "t5-c4", *plan, "1e-300"), "--compute 1e-300", "less than one unit"),
        (("optimal", "--law", "t5-c4", *plan, "1e12"), "--compute 1e12", "less than one unit"),
        (
            ("optimal", "--law", "t5-c4", *plan, "1e20", "--start", "0.9", "--end", "0.1"),
            "--start 0.9",
            "--end 0.1",
        ),
        (
            (
                "predict",
                "--law",
                "t5-c4",
                "--sparsity",
                "0,,0.5",
                "--params",
                "1e7",
                "--data",
                "1e5",
            ),
            "--sparsity",
            "empty item",
        ),
        (
            ("predict", "--law", "t5-c4", "--sparsity", "0.5", "--params", "1e7,", "--data", "1e5"),
            "--params",
            "empty item",
        ),
        (
            ("predict", "--law", "huge.json", "--params", "1e7", "--data", "1e5"),
            "huge.json",
            "'aD'",
            "1e+100",
        ),
        (("predict", "--law", "inf.json", "--params", "1e7", "--data", "1e5"), "inf.json", "'aD'"),
        (
            (
                "choose-pattern",
                "--law",
                "patterns.json",
                "--patterns",
                "patterns.json",
                *plan,
                "10x",
            ),
            "patterns['02:04']",
            "same pattern as patterns['2:4']",
        ),
    ]
    check_all(cases, tmp_path)


def test_a_huge_but_finite_loss_prints_in_scientific_notation(tmp_path):
    """A law inside the bound but far from its data: the table stays readable."""
    done = cli(
        "predict", "--law", law(tmp_path / "big.json", aD=1e90), "--params", "1e7", "--data", "1e5"
    )
    assert done.returncode == 0, done.stderr
    assert "e+17" in done.stdout and not re.search(r"\d{20}", done.stdout), done.stdout


def test_flags_named_right_and_size_refused_before_allocating(tmp_path):
    """preset, train --set / --model, bench-kernels shapes no machine holds,
    sweep storage that cannot be reached or does not outlive the process: one
    line each, before the store, its lock or any folder exists."""
    (tmp_path / "mem.toml").write_text(
        'family = "gpt"\nstorage = "memory://x/y"\n[grid]\nn_nonzero = ["50k"]\ntokens = ["1M"]\n'
    )
    (tmp_path / "ov.toml").write_text(
        'family = "gpt"\n[grid]\nn_nonzero = ["50k"]\ntokens = ["1M"]\n'
        "sparsity = [0.0, 0.5]\n[[override]]\nsparsity = 0.75\nset = {lr = 0.01}\n"
    )
    sweep = ("sweep", "quick", "--store", "s.sqlite")
    run = ("train", "--params", "10k", "--steps", "2", "--out", "r")
    cases = [
        (("preset", "nosuch"), "preset NAME", "'nosuch'"),
        (
            (*run, "--set", "prune_start=0.9", "--set", "prune_end=0.1"),
            "--set prune_start, --set prune_end",
        ),
        (
            (*run, "--prune-start", "0.9", "--set", "prune_end=0.1"),
            "--prune-start, --set prune_end",
        ),
        ((*run, "--model", ":"), "--model", "package.module:attribute"),
        ((*run, "--model", ".x:y"), "--model", "package.module:attribute"),
        (
            ("bench-kernels", "--out", "s.json", "--shapes", "100000x100000x100000"),
            "--shapes 100000x100000x100000",
            "needs at least",
            "TB",
        ),
        (
            ("bench-kernels", "--out", "s.json", "--shapes", "8x8x8,99999999999999999999x2x2"),
            "--shapes 99999999999999999999x2x2",
            "needs at least",
        ),
        ((*sweep, "--storage", "ftp://x/y", "--dry-run"), "--storage ftp://x/y", "cannot reach"),
        ((*sweep, "--storage", "ftp://x/y"), "--storage ftp://x/y", "cannot reach"),
        (
            (*sweep, "--storage", "ftp://localhost:1/x"),
            "--storage ftp://localhost:1/x",
            "cannot reach",
        ),
        (
            (*sweep, "--storage", "memory://x/y", "--dry-run"),
            "--storage memory://x/y",
            "ends with this process",
        ),
        (
            ("sweep", "mem.toml", "--store", "s.sqlite"),
            "mem.toml: storage memory://x/y",
            "ends with this process",
        ),
        (
            ("sweep", "ov.toml", "--store", "s.sqlite", "--dry-run"),
            "ov.toml: override[0]",
            "sparsity = 0.75",
            "matches no run",
        ),
    ]
    check_all(cases, tmp_path)


def test_train_refusals_leave_no_run_folder(tmp_path, corpus):
    """A corrupt Parquet file in --corpus, more data than the corpus holds, a
    model no machine holds (--check too, and a sweep's dry run): refused before
    the run folder or its .run.lock exists."""
    bad = tmp_path / "bad-corpus"
    bad.mkdir()
    (bad / "a.parquet").write_bytes(b"PAR1 torn")
    (tmp_path / "big.toml").write_text(
        f'family = "gpt"\ncorpus = "{corpus}"\n[grid]\nn_nonzero = ["1e15"]\ntokens = ["100k"]\n'
    )
    run = ("train", "--params", "10k", "--out", "r", *TINY_RUN)
    cases = [
        ((*run, "--corpus", bad), "a.parquet", "not a readable Parquet file"),
        ((*run, "--corpus", corpus, "--steps", "100000"), "--steps", "the corpus"),
        (
            (
                "train",
                "--params",
                "1e15",
                "--tokens",
                "100k",
                "--corpus",
                corpus,
                "--out",
                "r",
                "--check",
            ),
            "--params 1,000,000,000,000,000",
            "needs at least",
            "PB",
            "--force",
        ),
        (
            ("train", "--params", "1e15", "--tokens", "100k", "--corpus", corpus, "--out", "r"),
            "--params",
            "PB",
        ),
        (
            ("sweep", "big.toml", "--store", "s.sqlite", "--dry-run"),
            "big.toml: run (",
            "n_nonzero=1000000000000000",
            "needs at least",
        ),
    ]
    check_all(cases, tmp_path)


@pytest.mark.slow
def test_force_lets_a_user_go_past_the_memory_floor(tmp_path, corpus):
    """--check --force plans the run the floor refuses (nothing is allocated)."""
    done = cli(
        "train",
        "--params",
        "1e15",
        "--tokens",
        "100k",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "r",
        "--check",
        "--force",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_nonzero"] >= 1e15 and not (tmp_path / "r").exists()
