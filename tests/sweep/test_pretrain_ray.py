"""A pretrained (dense-prefix) sweep on the Ray executor with a real local
Ray: every run real training, each dense prefix trained once and finished
before its users start, the pruned runs resolved to the prefix's checkpoint."""

import os

import pytest

ray = pytest.importorskip("ray")

from sparsescale.sweep.coordinator import run_sweep  # noqa: E402
from sparsescale.sweep.spec import check_runs, expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = {
    "name": "pretrain-ray",
    "family": "gpt",
    "grid": {
        "sparsity": [0.0, 0.5, 0.75],
        "n_nonzero": ["8k"],
        "tokens": ["16k", "32k"],
        "dense_prefix": [0, "16k"],
    },
    "train": {"batch": 8, "seq_len": 32, "eval_tokens": 1024, "lr": 0.01},
}


@pytest.fixture()
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_dense_prefixes_are_shared_on_ray(tmp_path, local_ray):
    spec = spec_from_dict(SPEC)
    runs = check_runs(expand(spec))
    pruned = [r for r in runs if r.depends_on]
    prefix_of = {r.config_hash: r.depends_on[0] for r in pruned}
    assert len(pruned) == 2 and len(set(prefix_of.values())) == 2  # widths 16k (a grid run) and 32k
    store = tmp_path / "ray.sqlite"
    outcome = run_sweep(spec, runs, store, executor="ray")
    assert not outcome.failed and outcome.counts == {"finished": len(runs)}
    with Store(store, readonly=True) as s:
        trained = [a["config_hash"] for a in s.attempt_log() if a["outcome"] == "finished"]
        rows = {r["config_hash"]: r for r in s.runs()}
    assert sorted(trained) == sorted(rows)  # each run once: no prefix trained twice
    for h, prefix in prefix_of.items():
        assert rows[prefix]["finished_at"] <= rows[h]["started_at"]
        init = rows[h]["result"].config["init_from"]
        assert init.startswith(str(tmp_path / "ray.runs" / prefix[:16])) and init.endswith(
            "checkpoint.pt"
        )
