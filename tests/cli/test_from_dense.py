"""`sparsescale from-dense --dense N,D0 --compute C` in subprocesses: the
answer from a pruned-from-dense law file, and one line + exit 2 for every
hostile input; the old spelling `optimal --from-dense N,D0` runs it, with a
deprecation note, for one release."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sparsescale.laws.law import Law

COEFS = {"aS": 40.0, "bS": 0.8, "cS": 25.0, "bN": 0.35, "aD": 3.0e4, "bD": 0.3, "c": 1.0}


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def laws(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws")
    Law(
        form="sparse",
        coefficients=COEFS,
        name="pruned",
        tokens_per_unit=1.0,
        fit={"from_dense": {"dense_fraction": [0.25, 0.5], "dense_prefixes": [4e5, 8e5]}},
    ).save(d / "pruned.json")
    Law(form="sparse", coefficients=COEFS, name="scratch", tokens_per_unit=1.0).save(
        d / "scratch.json"
    )
    return d


def test_from_dense_answers_with_the_best_sparsity_and_the_dense_alternative(laws):
    done = run(
        "from-dense",
        "--law",
        laws / "pruned.json",
        "--dense",
        "100k,800k",
        "--compute",
        "4.8e11",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    law = Law(form="sparse", coefficients=COEFS)
    S = np.linspace(0, 0.999, 4001)
    brute = law.predict(S, 1e5 * (1 - S), 8e5 + 4.8e11 / (6e5 * (1 - 0.625 * S)))
    assert abs(out["sparsity"] - S[np.argmin(brute)]) < 1e-3 and out["loss"] == pytest.approx(
        brute.min(), rel=1e-6
    )
    assert out["dense_loss"] == pytest.approx(brute[0]) and out["compute_flops"] == 4.8e11
    assert out["n_nonzero"] == pytest.approx(1e5 * (1 - out["sparsity"]))
    same = json.loads(
        run(
            "from-dense",
            "--law",
            laws / "pruned.json",
            "--dense",
            "100k,800k",
            "--compute",
            "1x",
            "--json",
        ).stdout
    )
    assert same["sparsity"] == pytest.approx(out["sparsity"])  # 1x = 6 N D0 = 4.8e11 FLOPs
    text = run("from-dense", "--law", laws / "pruned.json", "--dense", "1e5,8e5", "--compute", "1x")
    assert (
        text.returncode == 0
        and "prune to sparsity S" in text.stdout
        and "no uncertainty" in text.stdout
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--dense", "0,8e5", "--compute", "1x"], "--dense: N must be a positive number"),
        (["--dense", "1e5,-3", "--compute", "1x"], "--dense: D0 must be a positive number"),
        (["--dense", "1e5", "--compute", "1x"], "--dense: expected N,D0"),
        (["--dense", "1e5,8e5,3", "--compute", "1x"], "--dense: expected N,D0"),
        (["--dense", "many,8e5", "--compute", "1x"], "--dense N:"),
        (["--dense", "1e5,8e5", "--compute", "0"], "--compute: must be a positive"),
        (["--dense", "1e5,8e5", "--compute", "1e3"], "--compute: buys"),
        (["--dense", "1e5,8e5"], "Missing option '--compute'"),
        (["--dense", "1e5,8e5", "--compute", "1x", "--params", "1e5"], "No such option: --params"),
        (["--dense", "1e5,8e5", "--compute", "1x", "--flops", "measured"], "--flops"),
        (
            ["--dense", "1e5,8e5", "--compute", "1x", "--start", "0.8", "--end", "0.2"],
            "--start 0.8, --end 0.2",
        ),
    ],
)
def test_hostile_from_dense_inputs_are_one_line_exit_2(laws, args, fragment):
    done = run("from-dense", "--law", laws / "pruned.json", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--compute", "1x", "--params", "1e5"], "--params: does not combine with --from-dense"),
        (["--compute", "1x", "--contours"], "--contours: does not combine with --from-dense"),
        (
            ["--compute", "1x", "--flops", "measured"],
            "--flops measured: --from-dense takes sparse or dense",
        ),
    ],
)
def test_the_old_spelling_refuses_the_flags_of_plain_optimal(laws, args, fragment):
    done = run("optimal", "--law", laws / "pruned.json", "--from-dense", "1e5,8e5", *args)
    assert (
        done.returncode == 2
        and len(done.stderr.strip().splitlines()) == 1
        and fragment in done.stderr
    ), done.stderr


@pytest.mark.parametrize("law", ["scratch.json", "t5-c4"])
def test_a_law_without_the_pruned_law_is_refused(laws, law):
    done = run(
        "from-dense",
        "--law",
        laws / law if law.endswith(".json") else law,
        "--dense",
        "1e5,8e5",
        "--compute",
        "1x",
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "holds no pruned-from-dense law" in done.stderr


@pytest.mark.parametrize(
    "compute, extra",
    [
        ("1x", []),
        ("4.8e11", ["--flops", "dense", "--start", "0.1", "--end", "0.5", "--level", "0.9"]),
    ],
)
def test_the_old_spelling_runs_the_new_command_with_one_note(laws, compute, extra):
    """`optimal --from-dense N,D0` gives the JSON of `from-dense --dense N,D0`,
    and one note on stderr naming the new command."""
    old = run(
        "optimal",
        "--law",
        laws / "pruned.json",
        "--from-dense",
        "100k,800k",
        "--compute",
        compute,
        *extra,
        "--json",
    )
    new = run(
        "from-dense",
        "--law",
        laws / "pruned.json",
        "--dense",
        "100k,800k",
        "--compute",
        compute,
        *extra,
        "--json",
    )
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert new.stderr == ""
    note = old.stderr.strip().splitlines()
    assert (
        len(note) == 1 and "deprecated" in note[0] and "sparsescale from-dense --dense" in note[0]
    )
