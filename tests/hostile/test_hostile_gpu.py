"""GPUs and training-at-scale options, hostile: every bad value is one line
naming the flag or the file, exit 2, and nothing written (no store, no run
folder, no train --out). This machine has no GPU, so asking for one is bad too."""

from __future__ import annotations

import pytest
from hostile_helpers import cli, one_line, train

SPEC = """name = "s"
family = "gpt"
corpus = "{corpus}"
[grid]
n_nonzero = ["10k"]
tokens = ["20k"]
{resources}
[train]
batch = 8
seq_len = 32
eval_tokens = 256
"""


def _spec(tmp_path, corpus, resources=""):
    path = tmp_path / "s.toml"
    path.write_text(SPEC.format(corpus=corpus, resources=resources))
    return path


@pytest.mark.parametrize(
    "flags, needle",
    [
        (("--gpus-per-run", "1"), "no GPU is visible"),
        (("--gpus-per-run", "1.5"), "--gpus-per-run: must be 0, a fraction"),
        (("--gpus-per-run", "-1"), "--gpus-per-run"),
        (("--gpus-per-run", "abc"), "--gpus-per-run"),
        (("--gpus-per-run", "2", "--devices", "0"), "needs 2 GPUs but only 1"),
        (("--gpus-per-run", "1", "--devices", "0,0"), "--devices: a device is listed twice"),
        (("--gpus-per-run", "1", "--devices", "cuda:0"), "--devices: expected CUDA device ids"),
        (("--devices", "0"), "--devices: the runs use no GPU"),
        (("--calibrate",), "--calibrate: only with --dry-run"),
        (
            ("--dry-run", "--calibrate", "--gpus-per-run", "1"),
            "--calibrate: the runs train on cuda",
        ),
    ],
)
def test_bad_device_requests(tmp_path, corpus, flags, needle):
    spec = _spec(tmp_path, corpus)
    one_line(cli("sweep", spec, "--store", tmp_path / "s.sqlite", *flags), 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "s.toml"]


@pytest.mark.parametrize(
    "resources, needle",
    [
        ("[resources]\ngpus_per_run = 3.5", "s.toml: resources.gpus_per_run: must be"),
        ("[resources]\ngpus = 1", "s.toml: resources.gpus: unknown key"),
        ('[resources]\ngpus_per_run = "all"', "s.toml: resources.gpus_per_run"),
    ],
)
def test_bad_resources_tables(tmp_path, corpus, resources, needle):
    spec = _spec(tmp_path, corpus, resources)
    one_line(cli("sweep", spec, "--store", tmp_path / "s.sqlite"), 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "s.toml"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (("--micro-batch", "3"), "--micro-batch: 3 does not divide the batch 4"),
        (("--micro-batch", "0"), "--micro-batch: must be >= 1"),
        (("--grad-clip", "0"), "--grad-clip: must be a finite norm > 0"),
        (("--grad-clip", "inf"), "--grad-clip"),
        (("--optimizer", "adamw", "--betas", "0.9"), "--betas"),
        (("--optimizer", "adamw", "--betas", "0.9,1.2"), "--betas: each beta must be in [0, 1)"),
        (("--betas", "0.9,0.99"), "--betas: only for --optimizer adamw"),
        (("--optimizer", "adamw", "--beta1", "0.9"), "--beta1: only for --optimizer adafactor"),
        (("--beta1", "1"), "--beta1: must be in [0, 1)"),
        (("--weight-decay", "-0.1"), "--weight-decay"),
        (("--set", "micro_batch=x"), "--set micro_batch"),  # named as it was given
    ],
)
def test_bad_training_options(corpus, tmp_path, extra, needle):
    one_line(train(corpus, tmp_path / "r", *extra), 2, needle)
    assert not (tmp_path / "r").exists()
