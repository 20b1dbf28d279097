"""GPUs per run on a machine without GPUs: the local executor pins each worker
to its devices with CUDA_VISIBLE_DEVICES (fake ids: nothing here opens them,
the runs train on the CPU, which their config says explicitly), packs
fractions, and a whole number above 1 trains one real DDP run over gloo whose
loss is the single-process run's."""

from __future__ import annotations

import json

import pytest
from toy_runner import most_at_once

from sparsescale.errors import SparsescaleError
from sparsescale.sweep.coordinator import run_sweep
from sparsescale.sweep.executors import device_slots
from sparsescale.sweep.spec import expand, spec_from_dict
from sparsescale.sweep.store import Store


def _spec(gpus, n_runs=4, train=None):
    sizes = ["10k", "20k", "30k", "40k"][:n_runs]
    return spec_from_dict(
        {
            "family": "gpt",
            "grid": {"n_nonzero": sizes, "tokens": ["1M"]},
            "resources": {"gpus_per_run": gpus},
            "train": {"device": "cpu", **(train or {})},
        }
    )


def _results(store):
    with Store(store, readonly=True) as s:
        return [json.loads(r["result_json"]) for r in s.runs()]


def test_device_slots_follow_gpus_per_run():
    ids = ["0", "1", "2", "3"]
    assert device_slots(0, ids) is None
    assert device_slots(1, ids) == [["0"], ["1"], ["2"], ["3"]]
    assert device_slots(2, ids) == [["0", "1"], ["2", "3"]]
    assert device_slots(3, ids) == [["0", "1", "2"]]  # floor(4 / 3): one DDP run at a time
    assert device_slots(0.5, ["0", "1"]) == [
        ["0"],
        ["1"],
        ["0"],
        ["1"],
    ]  # two runs per GPU, spread first
    assert device_slots(0.3, ["7"]) == [["7"]] * 3
    with pytest.raises(SparsescaleError, match="needs 4 GPUs but only 2"):
        device_slots(4, ["0", "1"])


def test_no_visible_gpu_is_refused_before_the_store_is_written(tmp_path):
    spec = _spec(1)
    with pytest.raises(SparsescaleError, match="no GPU is visible"):
        run_sweep(spec, expand(spec), tmp_path / "s.sqlite", runner="toy_runner:devices")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize(
    "gpus, devices, overlap, want_ids",
    [
        (1, ["0", "1"], 2, {"0", "1"}),  # one GPU each: two workers, each on its own id
        (0.5, ["3"], 2, {"3"}),  # half a GPU each: both workers on GPU 3
    ],
)
def test_local_workers_see_only_their_devices(
    tmp_path, monkeypatch, gpus, devices, overlap, want_ids
):
    monkeypatch.setenv("TOY_RUN_SLEEP", "1.0")
    spec = _spec(gpus)
    store = tmp_path / "s.sqlite"
    outcome = run_sweep(spec, expand(spec), store, runner="toy_runner:devices", devices=devices)
    assert outcome.counts == {"finished": 4}
    results = _results(store)
    seen = {r["cuda_visible_devices"] for r in results}
    assert seen == want_ids
    assert most_at_once(results) == overlap
    if gpus >= 1:  # runs in flight at once never share a device
        for a in results:
            for b in results:
                if a is not b and a["started"] < b["ended"] and b["started"] < a["ended"]:
                    assert a["cuda_visible_devices"] != b["cuda_visible_devices"]


@pytest.mark.slow
def test_two_gpus_per_run_train_one_ddp_run_with_the_single_process_loss(tmp_path):
    """gpus_per_run = 2: the worker launches 2 ranks (gloo on the CPU); each reads
    half of every batch, so the run computes what one process computes."""
    from sparsescale.train.config import RunConfig
    from sparsescale.train.run import train

    # micro-batches of 2 from the spec: each rank accumulates 2 passes, all-reducing on the last
    # only
    settings = {"batch": 8, "seq_len": 32, "eval_tokens": 256, "threads": 1, "micro_batch": 2}
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {"n_nonzero": ["20k"], "sparsity": [0.5], "steps": [8]},
            "resources": {"gpus_per_run": 2},
            "train": {"device": "cpu", **settings},
        }
    )
    runs = expand(spec)
    store = tmp_path / "ddp.sqlite"
    outcome = run_sweep(spec, runs, store, devices=["0", "1"])
    assert outcome.counts == {"finished": 1}, outcome.failed
    ddp = _results(store)[0]
    assert (
        ddp["world_size"] == 2 and ddp["device"] == "cpu" and ddp["cuda_visible_devices"] == "0,1"
    )
    config = {k: v for k, v in runs[0].config.items()}
    config.update(micro_batch=None)  # one process, the whole batch in one pass
    single = train(RunConfig(**config), tmp_path / "single", quiet=True)
    assert single.world_size == 1
    assert ddp["final_loss"] == pytest.approx(single.final_loss, rel=1e-5)
    for a, b in zip(ddp["curve"], single.curve):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
