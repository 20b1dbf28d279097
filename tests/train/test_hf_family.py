"""The registry is open: a Hugging Face transformers Llama-style LM (random
init from a config, no downloads) is sized by N and trained through the CLI
like a built-in family."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("transformers")


@pytest.mark.slow
def test_hf_llama_trains_through_sparsescale_train(small_corpus, tmp_path):
    out = tmp_path / "hf"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sparsescale.cli import main; main()",
            "train",
            "--model",
            "hf-llama",
            "--params",
            "20k",
            "--sparsity",
            "0.5",
            "--steps",
            "40",
            "--batch",
            "8",
            "--seq-len",
            "32",
            "--eval-every",
            "10",
            "--eval-tokens",
            "2048",
            "--threads",
            "1",
            "--corpus",
            str(small_corpus),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["family"] == "hf-llama" and result["status"] == "finished"
    assert abs(result["n_nonzero"] / 20_000 - 1) < 0.05  # sized by N
    assert result["measured_sparsity"] == pytest.approx(0.5, abs=1e-3)  # pruned like the others
    curve = [p["val_loss"] for p in result["curve"]]
    assert curve[-1] < curve[0] - 0.3  # and it learns


@pytest.mark.slow
def test_hf_llama_is_planned_by_the_sweep_machinery(tmp_path):
    """The quick preset with only the family changed: every run sized within 5% of its N."""
    import tomllib

    from sparsescale.recipes.demo import preset_path
    from sparsescale.sweep.spec import check_runs, expand, spec_from_dict

    raw = tomllib.loads(preset_path("quick").read_text())
    raw["family"] = "hf-llama"
    runs = check_runs(expand(spec_from_dict(raw)))
    grid = raw["grid"]
    assert len(runs) == len(grid["sparsity"]) * len(grid["n_nonzero"]) * len(grid["tokens"]) * len(
        grid["seeds"]
    )
    for run in runs:
        assert abs(run.plan["n_nonzero"] / run.config["params"] - 1) < 0.05
