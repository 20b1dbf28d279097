"""GPUs per run on Ray, with GPUs declared to a local Ray instance (nothing opens
them): every task asks for `gpus_per_run`, Ray gives it CUDA_VISIBLE_DEVICES,
whole GPUs are never shared by runs in flight, fractions share, and a request
no node can hold is one error before anything is written, never a hang."""

from __future__ import annotations

import json
import os

import pytest

ray = pytest.importorskip("ray")

from toy_runner import most_at_once  # noqa: E402

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.sweep.coordinator import run_sweep  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_with_gpus():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["TOY_RUN_SLEEP"] = "2.0"
    # 4 logical CPUs on any machine: the GPUs, not the CPUs, bound how many runs fly
    ray.init(address="local", num_gpus=4, num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    os.environ.pop("TOY_RUN_SLEEP", None)


def _sweep(tmp_path, gpus, n_runs):
    sizes = [f"{10 * (i + 1)}k" for i in range(n_runs)]
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {"n_nonzero": sizes, "tokens": ["1M"]},
            "resources": {"gpus_per_run": gpus},
            "train": {"device": "cpu"},
        }
    )
    store = tmp_path / "s.sqlite"
    outcome = run_sweep(spec, expand(spec), store, executor="ray", runner="toy_runner:devices")
    assert outcome.counts == {"finished": n_runs}, outcome.failed
    with Store(store, readonly=True) as s:
        return [json.loads(r["result_json"]) for r in s.runs()]


def _overlapping(results):
    return [
        (a, b)
        for i, a in enumerate(results)
        for b in results[i + 1 :]
        if a["started"] < b["ended"] and b["started"] < a["ended"]
    ]


def test_whole_gpus_are_assigned_one_run_each(tmp_path, ray_with_gpus):
    results = _sweep(tmp_path, 2, 4)
    for r in results:  # two ids each, from the four declared
        ids = r["cuda_visible_devices"].split(",")
        assert len(ids) == 2 and set(ids) <= {"0", "1", "2", "3"}, r["cuda_visible_devices"]
    for a, b in _overlapping(results):
        assert not set(a["cuda_visible_devices"].split(",")) & set(
            b["cuda_visible_devices"].split(",")
        )
    assert 1 < most_at_once(results) <= 2  # 4 GPUs / 2 per run, whatever the CPUs allow


def test_fractions_of_a_gpu_pack_several_runs_on_one(tmp_path, ray_with_gpus):
    results = _sweep(tmp_path, 0.25, 4)
    for r in results:
        assert r["cuda_visible_devices"] in {"0", "1", "2", "3"}
    shared = [
        (a, b)
        for a, b in _overlapping(results)
        if a["cuda_visible_devices"] == b["cuda_visible_devices"]
    ]
    assert shared, [(r["cuda_visible_devices"], r["started"], r["ended"]) for r in results]


def test_more_gpus_than_any_node_has_is_one_error_before_anything_is_written(
    tmp_path, ray_with_gpus
):
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {"n_nonzero": ["10k"], "tokens": ["1M"]},
            "resources": {"gpus_per_run": 8},
            "train": {"device": "cpu"},
        }
    )
    with pytest.raises(SparsescaleError, match="no node of the Ray cluster has 8 GPU"):
        run_sweep(
            spec, expand(spec), tmp_path / "s.sqlite", executor="ray", runner="toy_runner:devices"
        )
    assert not list(tmp_path.iterdir())
