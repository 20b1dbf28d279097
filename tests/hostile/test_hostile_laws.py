"""fit, predict and optimal under hostile input: bounded memory on big tables,
never an output over an input, law files checked on load, bounded numbers,
and JSON that always parses. Every case is a real CLI subprocess."""

from __future__ import annotations

import json
import os
import resource
import subprocess

import numpy as np
import pytest
from hostile_helpers import cli, cli_argv, digest, one_line

COLUMNS = ("--sparsity", "sparsity", "--params", "n", "--data", "d", "--loss", "loss")
T5 = {"aS": 16.8, "bS": 0.722, "cS": 45.0, "bN": 0.245, "aD": 1.05e4, "bD": 0.203, "c": 0.651}


def sweep_csv(path, rows: int = 48, seed: int = 0):
    """A synthetic sweep drawn from the paper's T5 law with 1% log noise."""
    rng = np.random.default_rng(seed)
    S = rng.choice([0.0, 0.5, 0.75, 0.875], rows)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), rows))
    D = np.exp(rng.uniform(np.log(1e3), np.log(1e6), rows))
    k = T5
    y = (k["aS"] * (1 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]
    y = y * np.exp(rng.normal(0, 0.01, rows))
    with open(path, "w") as f:
        f.write("sparsity,n,d,loss\n")
        np.savetxt(f, np.column_stack([S, N, D, y]), delimiter=",", fmt="%.10g")
    return path


@pytest.fixture()
def sweep(tmp_path):
    return sweep_csv(tmp_path / "good.csv")


def law_file(path, **changes):
    obj = {
        "form": "sparse",
        "name": "t",
        "coefficients": dict(T5),
        "units": {"N": "non-zero parameters", "D": "steps"},
    }
    for key, value in changes.items():
        if key in T5:
            obj["coefficients"][key] = value
        else:
            obj[key] = value
    path.write_text(json.dumps(obj))
    return path


# -- 1. memory bounded independently of the number of rows -------------------
@pytest.mark.slow
def test_fit_of_many_rows_runs_under_a_4_gb_address_space(tmp_path):
    """20,000 rows needed more than 4 GB before the candidate scoring was
    chunked (4096 x rows x 4 float64 per array); 250,000 rows and 1M rows are
    measured by benchmarks/fit_memory_bench.py under the same limit."""
    data = sweep_csv(tmp_path / "big.csv", rows=20_000)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4_000_000 * 1024, 4_000_000 * 1024))

    done = subprocess.run(
        cli_argv("fit", data, *COLUMNS, "--json"),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    law = json.loads(done.stdout)
    assert law["n_points"] == 20_000
    assert abs(law["coefficients"]["bN"] - T5["bN"]) < 0.05


# -- 2. outputs never over inputs ----------------------------------------------
def test_fit_out_over_its_own_data_is_refused(sweep, tmp_path):
    before = digest(sweep)
    one_line(cli("fit", sweep, *COLUMNS, "--out", sweep), 2, "--out", "input")
    alias = tmp_path / "alias.json"
    os.link(sweep, alias)  # another name of the same file
    one_line(cli("fit", sweep, *COLUMNS, "--out", alias), 2, "--out", "input")
    one_line(cli("fit", sweep, *COLUMNS, "--out", tmp_path / "." / "good.csv"), 2, "--out")
    assert digest(sweep) == before


def test_fit_out_over_its_base_law_is_refused(sweep, tmp_path):
    base = law_file(tmp_path / "base.json")
    before = digest(base, sweep)
    one_line(
        cli("fit", sweep, *COLUMNS, "--form", "nm", "--base", base, "--out", base),
        2,
        "--out",
        "input",
    )
    assert digest(base, sweep) == before


def test_fit_out_folder_and_bad_plots(sweep, tmp_path):
    before = digest(sweep)
    one_line(cli("fit", sweep, *COLUMNS, "--out", tmp_path), 2, "--out", "folder")
    one_line(cli("fit", sweep, *COLUMNS, "--plot", tmp_path / "p.xyz"), 2, "--plot", ".xyz")
    one_line(
        cli("fit", sweep, *COLUMNS, "--plot", sweep), 2, "--plot"
    )  # .csv: not an image format either
    png = tmp_path / "good.png"
    one_line(cli("fit", sweep, *COLUMNS, "--plot", png, "--out", png), 2, "--out")
    assert digest(sweep) == before
    assert not png.exists()


def test_optimal_plot_with_an_unknown_format(tmp_path):
    one_line(
        cli("optimal", "--law", "t5-c4", "--contours", "--plot", tmp_path / "m.xyz"),
        2,
        "--plot",
        ".xyz",
    )


# -- 3. law files checked on load; JSON output always JSON ---------------------
PREDICT = ("--sparsity", "0.5", "--params", "1e7", "--data", "1e5")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"bN": 0}, "bN"),
        ({"aS": -1e6}, "aS"),
        ({"c": -3}, "c"),
        ({"bD": -0.2}, "bD"),
        ({"bS": 1e6}, "bS"),
        ({"units": []}, "units"),
        ({"units": {"D": 3}}, "units"),
        ({"fit": "x"}, "fit"),
    ],
)
def test_law_files_with_bad_fields_are_refused_naming_file_and_field(tmp_path, change, field):
    law = law_file(tmp_path / "bad-law.json", **change)
    before = digest(law)
    for command in (
        ("predict", "--law", law, *PREDICT, "--json"),
        ("optimal", "--law", law, "--params", "1e7", "--compute", "10x"),
    ):
        one_line(cli(*command), 2, "bad-law.json", field)
    assert digest(law) == before


def test_law_file_with_a_bad_uncertainty_draw(tmp_path):
    draws = [list(T5.values()), {**T5, "bN": -1.0}.values()]
    unc = {
        "coefficient_names": list(T5),
        "draws": [list(d) for d in draws],
        "fit_range": {"n_nonzero": [1e6, 1e8], "data": [1e3, 1e5], "sparsity_max": 0.9},
        "model_error": {"floor": 0.01, "per_efold": 0.01},
    }
    law = law_file(tmp_path / "unc.json", uncertainty=unc)
    one_line(cli("predict", "--law", law, *PREDICT), 2, "unc.json", "draw 2", "bN")


def test_json_output_is_valid_json_when_a_prediction_overflows():
    done = cli("predict", "--law", "t5-c4", "--params", "1e7", "--data", "1e-308", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # no Infinity
    assert out["predictions"][0]["loss"] is None
    line = one_line(done, 0, "warning", "null")
    assert "predictions[0].loss" in line


# -- 4. numbers without a meaning, degenerate data, ambiguous headers --------
@pytest.mark.parametrize(
    "params, needle",
    [
        ("10**10**10", "not a finite number"),
        ("-" * 1000 + "n", "nested too deeply"),
        ("(" * 1000 + "n" + ")" * 1000, "characters"),
        ("exp(" * 150 + "n" + ")" * 150, "nested too deeply"),
        ("n" + "*1" * 3000, "characters"),
        ("n*10**400", "not a finite number"),
        ("n/0", "not a finite number"),
    ],
)
def test_fit_params_expressions_that_overflow_or_nest(sweep, params, needle):
    before = digest(sweep)
    cols = list(COLUMNS)
    cols[3] = params
    one_line(cli("fit", sweep, *cols), 2, "--params", needle)
    assert digest(sweep) == before


@pytest.mark.parametrize("seed", ["-5", str(2**40)])
def test_fit_seed_out_of_range(sweep, seed):
    one_line(cli("fit", sweep, *COLUMNS, "--seed", seed), 2, "--seed", "0..4294967295")


@pytest.mark.parametrize(
    "value, needle", [("1000000000", "0..10000"), ("1e9", "integer"), ("-1", "--bootstrap")]
)
def test_fit_bootstrap_without_bound_is_refused(sweep, value, needle):
    one_line(
        cli("fit", sweep, *COLUMNS, "--bootstrap", value, timeout=60), 2, "--bootstrap", needle
    )


def test_identical_rows_cannot_fit_seven_coefficients(tmp_path):
    data = tmp_path / "same.csv"
    data.write_text("sparsity,n,d,loss\n" + "0.5,1e7,1e5,3.1\n" * 40)
    before = digest(data)
    line = one_line(cli("fit", data, *COLUMNS), 2, "same.csv", "1 distinct", "7 free coefficients")
    assert "40" in line
    one_line(
        cli("fit", data, *COLUMNS, "--form", "dense"),
        2,
        "same.csv",
        "1 distinct",
        "5 free coefficients",
    )
    assert digest(data) == before


def test_duplicated_header_column_is_refused(sweep, tmp_path):
    text = sweep.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join([text[0] + ",loss"] + [r + ",9.9" for r in text[1:]]) + "\n")
    one_line(cli("fit", dup, *COLUMNS), 2, "dup.csv", "'loss'", "twice")
    records = tmp_path / "dup.json"
    records.write_text('[{"sparsity": 0.5, "n": 1e7, "d": 1e5, "loss": 3.1, "loss": 9.9}]')
    one_line(cli("fit", records, *COLUMNS), 2, "dup.json", "'loss'", "twice")


def test_chunking_under_a_small_memory_budget_changes_no_result(monkeypatch):
    """The chunked candidate scoring, refinement and bootstrap give the same
    numbers as one batch: a budget of ~200 kB splits all three stages on the
    paper's T5 sweep (130 candidates, 9 starts, ~13 resamples per chunk)."""
    from sparsescale.laws import fit as fit_module
    from sparsescale.laws.paper import paper_points, paper_sweep
    from sparsescale.laws.points import FitOptions, Points
    from sparsescale.laws.uncertainty.bootstrap import bootstrap

    S, N, D, y = paper_points("paper:t5")
    sweep = paper_sweep("paper:t5")
    kwargs = dict(space=sweep.space, delta=sweep.delta)
    whole = bootstrap(Points(S, N, D, y), FitOptions(seed=3, **kwargs), n_boot=30)
    monkeypatch.setattr(fit_module, "MEMORY_BUDGET", 200_000)
    assert fit_module.chunk_size(48 * 4) < 4096 and fit_module.resample_batch(48, 20) < 30
    chunked = bootstrap(Points(S, N, D, y), FitOptions(seed=3, **kwargs), n_boot=30)
    for name, (lo, med, hi) in whole.intervals.items():
        assert np.allclose(chunked.intervals[name], (lo, med, hi), rtol=1e-9, atol=0), name
