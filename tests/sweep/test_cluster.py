"""A sweep across a real multi-node Ray cluster on this machine
(ray.cluster_utils.Cluster): a head that takes no runs and two worker nodes,
each with its own scratch folder, and durable storage at a file:// URI (the
object-store path: runs are staged in scratch and mirrored to storage).

The sweep is real training: a run trained from scratch, a dense prefix and the
run pruned from it. The node that trained the dense prefix is removed while
the pruned run trains on it; that run must be retried on the other node from
its last durable checkpoint and give what a local sweep gives."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("fsspec")

from ray.cluster_utils import Cluster  # noqa: E402

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.sweep.coordinator import run_sweep  # noqa: E402
from sparsescale.sweep.spec import check_runs, expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = {
    "name": "cluster",
    "family": "gpt",
    "grid": {
        "sparsity": [0.5],
        "n_nonzero": ["8k"],
        "tokens": ["128k"],
        "init_from_dense": [0.0, 0.25],
    },
    "train": {"batch": 8, "seq_len": 32, "eval_tokens": 1024, "lr": 0.01},
}
TOY_SPEC = {
    "name": "toy",
    "family": "gpt",
    "grid": {"sparsity": [0.0, 0.5, 0.75], "n_nonzero": ["50k", "100k", "200k"], "tokens": ["1M"]},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    saved = {
        k: os.environ.get(k) for k in ("SPARSESCALE_SCRATCH", "SPARSESCALE_CACHE", "TOY_STEP_SLEEP")
    }
    # The head (the coordinator, which plans the runs) has a scratch folder too.
    os.environ["SPARSESCALE_SCRATCH"] = str(root / "scratch-head")
    os.environ.pop("SPARSESCALE_CACHE", None)
    os.environ["TOY_STEP_SLEEP"] = "0.01"
    c = Cluster(
        initialize_head=True,
        connect=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )  # no run lands on the head
    nodes = {
        name: c.add_node(
            num_cpus=1, env_vars={"SPARSESCALE_SCRATCH": str(root / f"scratch-{name}")}
        )
        for name in ("a", "b")
    }
    c.wait_for_nodes()
    yield root, c, nodes
    ray.shutdown()
    c.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _finished_node(
    store: Path, config_hash: str, deadline: float, over: threading.Event
) -> str | None:
    while time.time() < deadline and not over.is_set():
        if store.exists():
            try:
                with Store(store, readonly=True) as s:
                    done = [a for a in s.attempt_log(config_hash) if a["outcome"] == "finished"]
            except SparsescaleError:  # opened between the file's creation and its schema
                done = []
            if done:
                return done[-1]["node"]
        time.sleep(0.2)
    return None


def _remove_prefix_node_while_pruned_run_trains(root, c, nodes, store, dense, pruned, seen, over):
    """Wait for the dense prefix to finish, then for the pruned run to train on
    that same node with a checkpoint already in storage; then remove the node.
    (The other node is still busy with the long run trained from scratch, so
    the pruned run can only start on the prefix's node.)"""
    deadline = time.time() + 150
    node_id = _finished_node(store, dense, deadline, over)
    if node_id is None:
        return
    name = next(n for n, node in nodes.items() if node.node_id == node_id)
    other = next(n for n in nodes if n != name)
    staged = root / f"scratch-{name}" / "runs" / pruned[:16]
    durable = root / "storage" / pruned[:16]
    while time.time() < deadline and not over.is_set():
        if (durable / "result.json").exists() or (
            root / f"scratch-{other}" / "runs" / pruned[:16]
        ).exists():
            seen["missed"] = "the pruned run finished first or started on the other node"
            return
        if staged.exists() and (durable / "checkpoint.pt").exists():
            c.remove_node(nodes[name])
            seen["removed"] = name
            return
        time.sleep(0.05)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)).split(os.sep)[0] for p in folder.rglob("*") if p.is_file()}


def test_sweep_survives_node_loss_and_matches_a_local_sweep(cluster):
    root, c, nodes = cluster
    spec = spec_from_dict(SPEC)
    runs = check_runs(expand(spec))
    dense = next(r.config_hash for r in runs if r.axes.get("role") == "dense-pretrain")
    pruned = next(r.config_hash for r in runs if r.depends_on)

    ref = run_sweep(spec, runs, root / "ref" / "ref.sqlite", executor="local", workers=2)
    assert ref.counts == {"finished": 3}

    store = root / "cluster.sqlite"
    seen: dict = {}
    over = threading.Event()
    monitor = threading.Thread(
        target=_remove_prefix_node_while_pruned_run_trains,
        args=(root, c, nodes, store, dense, pruned, seen, over),
    )
    monitor.start()
    try:
        outcome = run_sweep(spec, runs, store, executor="ray", storage=f"file://{root}/storage")
    finally:
        over.set()
        monitor.join()
    assert "removed" in seen, f"the pruned run was not caught mid-run on its prefix's node: {seen}"
    assert outcome.counts == {"finished": 3} and not outcome.failed

    with Store(store, readonly=True) as s, Store(root / "ref" / "ref.sqlite", readonly=True) as r:
        got, want = {x["config_hash"]: x for x in s.runs()}, {x["config_hash"]: x for x in r.runs()}
        log = s.attempt_log()
        curves, ref_curves = s.curves(), r.curves()
    # Every run finished exactly once; the pruned run's first attempt died with its node.
    finished = [a["config_hash"] for a in log if a["outcome"] == "finished"]
    assert sorted(finished) == sorted(got)
    lost = [a for a in log if a["outcome"] == "failed"]
    assert [a["config_hash"] for a in lost] == [pruned]
    assert lost[0]["reason"].startswith(("NodeDiedError", "WorkerCrashedError")), lost[0]["reason"]
    if lost[0]["reason"].startswith("NodeDiedError"):
        assert lost[0]["node"] == nodes[seen["removed"]].node_id
    retry = next(a for a in log if a["config_hash"] == pruned and a["outcome"] == "finished")
    assert retry["resumed"] == 1, "the retry did not start from the durable checkpoint"
    prefix_node = next(a["node"] for a in log if a["config_hash"] == dense)
    assert retry["node"] != prefix_node == nodes[seen["removed"]].node_id
    # Bit-for-bit what a local sweep computes.
    for h, row in want.items():
        assert got[h]["final_loss"] == pytest.approx(row["final_loss"], abs=1e-6)
        assert [p["val_loss"] for p in curves[h]] == pytest.approx(
            [p["val_loss"] for p in ref_curves[h]], abs=1e-6
        )
        assert [p["train_loss"] for p in curves[h]] == pytest.approx(
            [p["train_loss"] for p in ref_curves[h]], abs=1e-6
        )

    # Files: the store, storage and scratch folders only (ref/ is the local sweep's).
    store_files = {
        "cluster.sqlite",
        "cluster.sqlite-wal",
        "cluster.sqlite-shm",
        "cluster.sqlite.lock",
    }
    assert _tree(root) <= store_files | {"storage", "ref", "scratch-head", "scratch-a", "scratch-b"}
    assert {p.name for p in (root / "storage").iterdir()} == {h[:16] for h in got}
    for name in ("a", "b"):  # each node tokenised the corpus itself, in its own scratch
        assert list((root / f"scratch-{name}" / "cache" / "corpora").glob("*/tokens.bin"))

    # A second sweep (the toy runner, for enough points to fit) on the surviving node.
    toy = spec_from_dict(TOY_SPEC)
    toy_store = root / "toy.sqlite"
    assert run_sweep(
        toy,
        expand(toy),
        toy_store,
        executor="ray",
        runner="toy_runner:run",
        storage=f"file://{root}/storage-toy",
    ).counts == {"finished": 9}

    # Every node's scratch gone: export and report work from the stores and storage alone.
    for name in ("head", "a", "b"):
        shutil.rmtree(root / f"scratch-{name}")
    env = dict(os.environ, SPARSESCALE_SCRATCH=str(root / "scratch-cli"))
    cli = [sys.executable, "-m", "sparsescale"]
    p = subprocess.run(
        [*cli, "export", str(store), "--csv", str(root / "out" / "cluster.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert (
        len((root / "out" / "cluster.csv").read_text().strip().splitlines()) == 1 + 2
    )  # the prefix is not a result
    p = subprocess.run(
        [*cli, "report", str(toy_store), "--out", str(root / "out" / "report"), "--bootstrap", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert (root / "out" / "report" / "report.html").exists()
