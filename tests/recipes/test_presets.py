import subprocess
import sys
from pathlib import Path

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.recipes.demo import PRESETS, preset_path
from sparsescale.sweep.spec import expand, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", PRESETS)
def test_presets_have_one_source_printed_by_the_cli(name):
    assert not (EXAMPLES / f"{name}.toml").exists()  # no copies to drift apart
    done = subprocess.run(
        [sys.executable, "-c", "from sparsescale.cli import main; main()", "preset", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == preset_path(name).read_text()


def test_sweep_runs_a_preset_by_name(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sparsescale.cli import main; main()",
            "sweep",
            "quick",
            "--dry-run",
            "--store",
            str(tmp_path / "q.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "36 runs" in done.stdout and not (tmp_path / "q.sqlite").exists()


def test_quick_preset_has_the_promised_grid():
    spec = load_spec(preset_path("quick"))
    runs = expand(spec)
    assert spec.family == "gpt" and sorted(spec.grid.sparsity) == [0.0, 0.5, 0.75]
    sizes = sorted({r.config["params"] for r in runs})
    budgets = sorted({r.config["tokens"] for r in runs})
    # issue 11: N over 8x (the largest is the holdout, so the fit still sees 4x),
    # several budgets, and a final loss measured on enough tokens (SE ~0.2%)
    assert len(sizes) >= 4 and sizes[-1] / sizes[0] >= 8
    assert len(budgets) >= 3 and budgets[-1] / budgets[0] >= 4
    assert all(r.config["final_eval_tokens"] >= 262_144 for r in runs)


def test_cpu_full_and_vit_presets():
    full = expand(load_spec(preset_path("cpu-full")))
    assert {r.config["sparsity"] for r in full} == {0.0, 0.5, 0.75, 0.875}
    assert (
        len({r.config["params"] for r in full}) == 4
        and len({r.config["tokens"] for r in full}) == 3
    )
    vit = load_spec(preset_path("vit-quick"))
    assert vit.family == "vit" and "repeat" in vit.note


def test_unknown_preset():
    with pytest.raises(SparsescaleError, match="--preset: unknown preset 'huge'"):
        preset_path("huge")
