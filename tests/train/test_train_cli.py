"""`sparsescale train` reaches every RunConfig field: one generated flag per
field, and --set key=value; bad values are one line on stderr, exit 2.
A single run and a sweep agree on what makes two runs the same run."""

import json
import subprocess
import sys

import pytest

from sparsescale.train.config import RunConfig


def cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from sparsescale.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_field_has_a_flag():
    done = cli("train", "--help")
    for name in RunConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in done.stdout, name


def _tiny(small_corpus, out, *extra):
    return cli(
        "train",
        "--params",
        "10k",
        "--steps",
        "6",
        "--batch",
        "4",
        "--seq-len",
        "32",
        "--threads",
        "1",
        "--eval-tokens",
        "512",
        "--corpus",
        small_corpus,
        "--out",
        out,
        "--quiet",
        *extra,
    )


def test_flags_and_set_reach_fields_that_had_no_flag(small_corpus, tmp_path):
    done = _tiny(
        small_corpus,
        tmp_path / "r",
        "--lr-schedule",
        "rsqrt",
        "--warmup",
        "0.2",
        "--prune-start",
        "0.1",
        "--set",
        "prune_end=0.6",
        "--set",
        "mlp=geglu",
        "--pos",
        "rope",
        "--sparsity",
        "0.5",
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "r" / "result.json").read_text())["config"]
    assert (
        config["lr_schedule"],
        config["warmup"],
        config["prune_start"],
        config["prune_end"],
    ) == ("rsqrt", 0.2, 0.1, 0.6)
    assert (config["mlp"], config["pos"]) == ("geglu", "rope")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "nosuch=1"], "--set nosuch=1: expected key=value"),
        (["--set", "lr"], "--set lr: expected key=value"),
        (["--warmup", "2"], "--warmup: is a fraction of the steps"),
        (["--lr-schedule", "linear"], "--lr-schedule:"),
        (["--seed", "x"], "--seed:"),
    ],
)
def test_bad_values_are_one_line(small_corpus, tmp_path, extra, message):
    done = _tiny(small_corpus, tmp_path / "r", *extra)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_eval_every_is_identity_for_a_single_run_as_for_a_sweep(small_corpus, tmp_path):
    from sparsescale.sweep.spec import config_hash

    out = tmp_path / "r"
    assert _tiny(small_corpus, out, "--eval-every", "3").returncode == 0
    first = (out / "result.json").read_text()
    # execution settings: the finished run is returned as is
    again = _tiny(small_corpus, out, "--eval-every", "3", "--threads", "2", "--ckpt-every", "2")
    assert again.returncode == 0 and (out / "result.json").read_text() == first
    # eval_every changes the recorded curve: another run, refused in this folder ...
    other = _tiny(small_corpus, out, "--eval-every", "2")
    assert other.returncode == 2 and "different run" in other.stderr
    # ... and a different run (another hash, another folder) in a sweep
    base = {"model": "gpt", "params": 10_000, "steps": 6, "eval_every": 3}
    assert config_hash({**base, "eval_every": 2}) != config_hash(base)
    assert config_hash({**base, "threads": 2, "ckpt_every": 2}) == config_hash(base)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pattern", "2:4"], "semi_structured: semi-structured 2:4 kernels need a CUDA device"),
        (["--sparsity", "0.5"], "semi_structured: needs pattern 2:4 or 2:4T, got unstructured"),
    ],
)
def test_semi_structured_refused_up_front_where_it_cannot_run(
    small_corpus, tmp_path, extra, message
):
    # On CPU the 2:4 kernels do not exist: the run stops at setup with one line,
    # before any training, and writes no checkpoint.
    done = _tiny(small_corpus, tmp_path / "r", "--semi-structured", *extra)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
