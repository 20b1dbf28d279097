"""The gpu-small preset: GPU-shaped as promised, and its path works end to end
on CPU: a copy pointed at shards and a tokenizer.json dry-runs, and one of its
runs trains a few steps."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsescale.recipes.demo import preset_path
from sparsescale.sweep.spec import expand, load_spec

SRC = Path(__file__).resolve().parents[2] / "src"


def test_gpu_small_is_gpu_shaped():
    spec = load_spec(preset_path("gpu-small"))
    runs = expand(spec)
    assert spec.family == "gpt" and len(runs) == 108
    t = spec.train
    assert t["seq_len"] >= 256 and t["depth"] == "auto" and t["head_dim"] == 64
    assert t["tokenizer"] not in ("byte",) and t["vocab_size"] >= 4096
    assert min(r.config["params"] for r in runs) >= 1_000_000
    lrs = sorted({r.axes["lr"] for r in runs})
    assert len(lrs) >= 3 and lrs[-1] / lrs[0] >= 4


def _copy_for_shards(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The preset as a user edits it: corpus = a shard folder, tokenizer = its tokenizer.json."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from test_tokenize import make_tokenizer

    shards = tmp_path / "shards"
    shards.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # 3 x 1.7M training tokens: the preset's 4M-token budget fits
        rng.integers(0, 300, 1_700_000, dtype=np.uint16).tofile(shards / f"train_{i}.bin")
    rng.integers(0, 300, 300_000, dtype=np.uint16).tofile(shards / "val_0.bin")
    tok = make_tokenizer(shards / "tokenizer.json")
    (shards / "manifest.json").write_text(
        json.dumps({"dtype": "uint16", "vocab_size": 8192, "val": ["val_*.bin"]})
    )
    text = preset_path("gpu-small").read_text()
    text = text.replace('family = "gpt"\n', f'family = "gpt"\ncorpus = "{shards}"\n')
    text = text.replace('tokenizer = "bpe"', f'tokenizer = "{tok}"')
    spec = tmp_path / "my-sweep.toml"
    spec.write_text(text)
    return spec, shards, tok


@pytest.mark.slow
def test_gpu_small_dry_runs_on_shards_and_a_run_trains(tmp_path):
    spec, shards, tok = _copy_for_shards(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(SRC), SPARSESCALE_CACHE=str(tmp_path / "cache"))
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "sweep",
            str(spec),
            "--dry-run",
            "--store",
            str(tmp_path / "g.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert dry.returncode == 0, dry.stderr
    assert "108 runs" in dry.stdout and not (tmp_path / "g.sqlite").exists()

    # the smallest sparse run of the grid, as planned, cut to 2 steps of 4 sequences
    run = min(
        (r for r in expand(load_spec(spec)) if r.config["sparsity"] == 0.5),
        key=lambda r: (r.config["params"], r.config["tokens"]),
    )
    cfg = {k: v for k, v in run.config.items() if k != "tokens"}
    cfg.update(steps=2, batch=4, eval_tokens=1024, final_eval_tokens=1024, device="cpu", threads=1)
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    code = (
        "import json, sys; from sparsescale.train.run import train; "
        "train(json.load(open(sys.argv[1])), sys.argv[2], quiet=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run.json"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    mc = result["model_config"]
    assert result["status"] == "finished" and math.isfinite(result["final_loss"])
    assert (
        mc["seq_len"] == 256
        and mc["depth"] >= 3
        and mc["vocab_size"] == 8192
        and mc["n_heads"] == mc["width"] // 64
    )
    assert abs(result["n_nonzero"] / 1_000_000 - 1) < 0.05
