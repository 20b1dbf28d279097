import subprocess
import sys

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.locks import StoreLock
from sparsescale.sweep.spec import expand, spec_from_dict
from sparsescale.sweep.store import Store

SPEC = spec_from_dict(
    {"family": "gpt", "grid": {"sparsity": [0.0, 0.5], "n_nonzero": ["50k"], "tokens": ["1M"]}}
)


def result(status="finished", loss=3.0):
    return {
        "status": status,
        "sparsity": 0.5,
        "pattern": None,
        "n_nonzero": 50_000,
        "tokens": 1_000_000,
        "final_loss": loss,
        "curve": [
            {"step": 1, "tokens": 10, "val_loss": 5.0, "train_loss": 5.5},
            {"step": 2, "tokens": 20, "val_loss": loss, "train_loss": float("nan")},
        ],
    }


def test_runs_are_added_once_and_results_replace_curves(tmp_path):
    runs = expand(SPEC)
    with Store(tmp_path / "s.sqlite") as store:
        sid = store.add_sweep("t", SPEC.model_dump(mode="json"), runs, tmp_path / "runs")
        assert store.add_sweep("t", SPEC.model_dump(mode="json"), runs, tmp_path / "runs") == sid
        assert [r["status"] for r in store.runs()] == ["pending", "pending"]
        h = runs[1].config_hash
        store.mark_running(h)
        store.record_result(h, result(loss=3.0))
        store.record_result(h, result(loss=2.5))  # recording twice keeps one row and one curve
        row = store.run(h)
        assert row["status"] == "finished" and row["final_loss"] == 2.5 and row["attempts"] == 1
        assert len(store.runs()) == 2
        curve = store.curves()[h]
        assert (
            [p["step"] for p in curve] == [1, 2]
            and curve[1]["val_loss"] == 2.5
            and curve[1]["train_loss"] is None
        )
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failures_are_counted_with_their_reason(tmp_path):
    runs = expand(SPEC)
    with Store(tmp_path / "s.sqlite") as store:
        store.add_sweep("t", {}, runs, tmp_path)
        h = runs[0].config_hash
        assert store.record_failure(h, "boom") == 1
        assert store.record_failure(h, "bang") == 2
        assert store.run(h)["failure_reason"] == "bang" and store.run(h)["status"] == "failed"
        store.record_result(h, result("diverged", float("nan")))
        assert store.run(h)["status"] == "diverged" and store.run(h)["final_loss"] is None
        with pytest.raises(ValueError):
            store.record_result(h, {"status": "running"})


def test_readonly_store_errors(tmp_path):
    with pytest.raises(SparsescaleError, match="no such sweep store"):
        Store(tmp_path / "nope.sqlite", readonly=True)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(SparsescaleError, match="not a sparsescale sweep store"):
        Store(junk, readonly=True)


def test_second_lock_refuses_and_kill_releases(tmp_path):
    store = tmp_path / "s.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from sparsescale.locks import StoreLock\n"
                f"l = StoreLock({str(store)!r}).acquire(); print('held', flush=True); "
                "time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            SparsescaleError, match=rf"another sweep coordinator \(pid {holder.pid}\)"
        ):
            StoreLock(store).acquire()
    finally:
        holder.kill()
        holder.wait()
    with StoreLock(store):  # SIGKILL released it
        pass
