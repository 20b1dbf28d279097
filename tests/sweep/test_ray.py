"""The Ray executor against a real local Ray instance (2 CPUs, no dashboard)."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from toy_runner import toy_loss  # noqa: E402

from sparsescale.sweep.coordinator import run_sweep  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["TOY_STEP_SLEEP"] = "0.2"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    os.environ.pop("TOY_STEP_SLEEP", None)


def test_ray_sweep_runs_every_run_and_survives_a_killed_worker(tmp_path, local_ray):
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {"sparsity": [0.0, 0.5], "n_nonzero": ["50k", "100k"], "tokens": ["1M"]},
        }
    )
    runs = expand(spec)
    store = tmp_path / "ray.sqlite"
    killed = []

    def kill_one_worker_mid_run():
        deadline = time.time() + 60
        while time.time() < deadline:
            for ckpt in (tmp_path / "ray.runs").glob("*/ckpt.json"):
                try:
                    step = json.loads(ckpt.read_text())["step"]
                except ValueError:
                    continue
                if step >= 3:
                    pid = int((ckpt.parent / "worker.pid").read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed.append(ckpt.parent)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    outcome = run_sweep(spec, runs, store, executor="ray", runner="toy_runner:run")
    killer.join()
    assert killed, "no run was seen mid-way"
    assert outcome.counts == {"finished": 4} and not outcome.failed
    with Store(store, readonly=True) as s:
        rows = s.runs()
    for r in rows:
        c = r["config"]
        assert r["final_loss"] == pytest.approx(toy_loss(c["sparsity"], c["params"], c["tokens"]))
    victim = next(r for r in rows if Path(r["out_dir"]) == killed[0])
    # The coordinator (not Ray) retried it and recorded the attempt; it resumed from
    # the checkpoint and completed once
    assert json.loads(victim["result_json"])["resumed_from_step"] >= 3
    assert len((killed[0] / "completions.log").read_text().split()) == 1
    with Store(store, readonly=True) as s:
        log = s.attempt_log(victim["config_hash"])
    assert [a["outcome"] for a in log] == ["failed", "finished"] and log[1]["resumed"] == 1
