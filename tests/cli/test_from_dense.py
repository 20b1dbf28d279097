"""`sparsescale optimal --from-dense N,D0 --compute C` in subprocesses: the
answer from a pruned-from-dense law file, and one line + exit 2 for every
hostile input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sparsescale.laws.law import Law

COEFS = {"aS": 40.0, "bS": 0.8, "cS": 25.0, "bN": 0.35, "aD": 3.0e4, "bD": 0.3, "c": 1.0}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sparsescale", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def laws(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws")
    Law(form="sparse", coefficients=COEFS, name="pruned", tokens_per_unit=1.0,
        fit={"from_dense": {"dense_fraction": [0.25, 0.5], "dense_prefixes": [4e5, 8e5]}}).save(d / "pruned.json")
    Law(form="sparse", coefficients=COEFS, name="scratch", tokens_per_unit=1.0).save(d / "scratch.json")
    return d


def test_from_dense_answers_with_the_best_sparsity_and_the_dense_alternative(laws):
    done = run("optimal", "--law", laws / "pruned.json", "--from-dense", "100k,800k", "--compute", "4.8e11", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    law = Law(form="sparse", coefficients=COEFS)
    S = np.linspace(0, 0.999, 4001)
    brute = law.predict(S, 1e5 * (1 - S), 8e5 + 4.8e11 / (6e5 * (1 - 0.625 * S)))
    assert abs(out["sparsity"] - S[np.argmin(brute)]) < 1e-3 and out["loss"] == pytest.approx(brute.min(), rel=1e-6)
    assert out["dense_loss"] == pytest.approx(brute[0]) and out["compute_flops"] == 4.8e11
    assert out["n_nonzero"] == pytest.approx(1e5 * (1 - out["sparsity"]))
    same = json.loads(run("optimal", "--law", laws / "pruned.json", "--from-dense", "100k,800k", "--compute", "1x",
                          "--json").stdout)
    assert same["sparsity"] == pytest.approx(out["sparsity"])   # 1x = 6 N D0 = 4.8e11 FLOPs
    text = run("optimal", "--law", laws / "pruned.json", "--from-dense", "1e5,8e5", "--compute", "1x")
    assert text.returncode == 0 and "prune to sparsity S" in text.stdout and "no uncertainty" in text.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--from-dense", "0,8e5", "--compute", "1x"], "--from-dense: N must be a positive number"),
    (["--from-dense", "1e5,-3", "--compute", "1x"], "--from-dense: D0 must be a positive number"),
    (["--from-dense", "1e5", "--compute", "1x"], "--from-dense: expected N,D0"),
    (["--from-dense", "1e5,8e5,3", "--compute", "1x"], "--from-dense: expected N,D0"),
    (["--from-dense", "many,8e5", "--compute", "1x"], "--from-dense N:"),
    (["--from-dense", "1e5,8e5", "--compute", "0"], "--compute: must be a positive"),
    (["--from-dense", "1e5,8e5", "--compute", "1e3"], "--compute: buys"),
    (["--from-dense", "1e5,8e5"], "--compute: required with --from-dense"),
    (["--from-dense", "1e5,8e5", "--compute", "1x", "--params", "1e5"], "--params: does not combine"),
    (["--from-dense", "1e5,8e5", "--compute", "1x", "--flops", "measured"], "--flops measured"),
])
def test_hostile_from_dense_inputs_are_one_line_exit_2(laws, args, fragment):
    done = run("optimal", "--law", laws / "pruned.json", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr


@pytest.mark.parametrize("law", ["scratch.json", "t5-c4"])
def test_a_law_without_the_pruned_law_is_refused(laws, law):
    done = run("optimal", "--law", laws / law if law.endswith(".json") else law, "--from-dense", "1e5,8e5",
               "--compute", "1x")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "holds no pruned-from-dense law" in done.stderr
