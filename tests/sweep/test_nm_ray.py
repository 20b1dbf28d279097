"""An n:m sweep on the Ray executor against a real local Ray (2 CPUs, no
dashboard), training real GPT runs: unstructured, 2:4 and 1:4 over one grid."""

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from sparsescale.sweep.coordinator import run_sweep  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # address="local": start our own instance even when another Ray runs on this machine
    # (ray.init would otherwise attach to it, and refuses num_cpus there)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _kept_per_group(weight: torch.Tensor, m: int) -> int:
    """The most non-zeros in any group of m consecutive weights along the input dimension."""
    groups = weight.reshape(weight.shape[0], -1, m)
    return int((groups != 0).sum(dim=-1).max())


def test_nm_sweep_on_ray_trains_exact_nm_masks(tmp_path, local_ray):
    spec = spec_from_dict(
        {
            "family": "gpt",
            "name": "nm-ray",
            "grid": {
                "sparsity": [0.0],
                "n_nonzero": ["12.5k"],
                "tokens": ["0.1M"],
                "patterns": ["unstructured", "2:4", "1:4"],
            },
            "train": {"eval_every": 0, "final_eval_tokens": 16384},
        }
    )
    runs = expand(spec)
    assert sorted((r.config["pattern"] or "-", r.config["sparsity"]) for r in runs) == [
        ("-", 0.0),
        ("1:4", 0.75),
        ("2:4", 0.5),
    ]
    store = tmp_path / "nm.sqlite"
    outcome = run_sweep(spec, runs, store, executor="ray")
    assert outcome.counts == {"finished": 3} and not outcome.failed
    with Store(store, readonly=True) as s:
        rows = {r["pattern"] or "unstructured": r for r in s.runs()}
    for pattern, n_kept in (("2:4", 2), ("1:4", 1)):
        r = rows[pattern]
        assert r["sparsity"] == pytest.approx(1 - n_kept / 4) and 2.0 < r["final_loss"] < 6.0
        state = torch.load(
            Path(r["out_dir"]) / "checkpoint.pt", map_location="cpu", weights_only=False
        )["model"]
        pruned = [
            w
            for k, w in state.items()
            if k.startswith("blocks.") and k.endswith(".weight") and w.ndim == 2
        ]
        assert pruned and all(_kept_per_group(w, 4) <= n_kept for w in pruned)
        density = sum(int((w != 0).sum()) for w in pruned) / sum(w.numel() for w in pruned)
        assert density == pytest.approx(n_kept / 4, abs=1e-3)  # exactly n:m at the end of the ramp
