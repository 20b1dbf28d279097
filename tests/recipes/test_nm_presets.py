"""The n:m presets: their grids, and nm-quick end to end (sweep -> report ->
optimal --patterns) in subprocesses."""

import json
import subprocess
import sys

import pytest

from sparsescale.recipes.demo import preset_path
from sparsescale.sweep.spec import expand, load_spec


def test_nm_presets_cross_patterns_with_the_unstructured_grid():
    quick = expand(load_spec(preset_path("quick")))
    full = expand(load_spec(preset_path("nm")))
    assert len(full) == 84
    base = {
        (r.config["sparsity"], r.config["params"], r.config["tokens"])
        for r in full
        if r.config["pattern"] is None
    }
    assert base == {(r.config["sparsity"], r.config["params"], r.config["tokens"]) for r in quick}
    for pattern, s in (("2:4", 0.5), ("4:8", 0.5), ("1:4", 0.75), ("2:8", 0.75)):
        mine = {
            (r.config["sparsity"], r.config["params"], r.config["tokens"])
            for r in full
            if r.config["pattern"] == pattern
        }
        assert mine == {b for b in base if b[0] == s}  # same N and D grid as unstructured at its S
    small = expand(load_spec(preset_path("nm-quick")))
    assert len(small) == 30 and {r.config["pattern"] for r in small} == {None, "2:4", "1:4"}


def sparsescale(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.timeout(1500)  # ~6 min of training on an idle 2-core machine; room for a busy one
def test_nm_quick_end_to_end(tmp_path):
    store, report = tmp_path / "nm.sqlite", tmp_path / "report"
    done = sparsescale("sweep", "nm-quick", "--store", store, "--workers", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    done = sparsescale("report", store, "--out", report, "--bootstrap", "40")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "n:m patterns refitted on the unstructured law" in done.stdout
    page = (report / "report.html").read_text()
    assert "<h2>n:m patterns</h2>" in page and "loss against N per n:m pattern" in page
    assert (report / "patterns_loss_vs_n.png").read_bytes()[:4] == b"\x89PNG"
    law = json.loads((report / "law.json").read_text())
    pats = law["pattern_laws"]["patterns"]
    assert (
        set(pats) == {"2:4", "1:4"}
        and pats["2:4"]["n_runs"] == 6
        and pats["1:4"]["sparsity"] == 0.75
    )
    for entry in pats.values():
        # two sparsities identify the family: nothing is undetermined for want of a sparsity (a
        # bound may still bind)
        assert entry["family"] == "n:4" and all(
            "bound" in why for why in entry["undetermined"].values()
        )
        q = entry["quantities"]
        assert q["k_ratio"]["low"] <= q["k_ratio"]["median"] <= q["k_ratio"]["high"]
        assert (
            0.5 < q["k_ratio"]["value"] < 2.0
        )  # same S, same N term within a factor 2 of unstructured
        assert entry["law"]["form"] == "nm" and len(entry["law"]["uncertainty"]["draws"]) >= 30
        assert entry["law"]["coefficients"]["bN"] == law["coefficients"]["bN"]  # the base is kept
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary["patterns"]["determined"]) == {"2:4", "1:4"}
    done = sparsescale(
        "choose-pattern",
        "--law",
        report / "law.json",
        "--patterns",
        report / "law.json",
        "--params",
        "50k",
        "--compute",
        "10x",
        "--speedup",
        "2:4=1.5",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [r["choice"] for r in out["choices"]] == [
        "dense",
        "unstructured 50%",
        "unstructured 75%",
        "2:4",
        "1:4",
    ]
    assert all("interval" in r["flops"] for r in out["choices"])
    assert out["best"]["flops"] in {r["choice"] for r in out["choices"]}
