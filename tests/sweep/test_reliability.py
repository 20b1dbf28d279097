"""Crash safety of sweeps with real processes: the coordinator is the real CLI
in a subprocess, killed with SIGKILL; workers are real spawned processes.

The runner here is tests/sweep/toy_runner.py (a stand-in for training that
sleeps per step, checkpoints and resumes like the real one) so that these
tests exercise the sweep machinery in seconds. The end-to-end tests with real
training live in test_sweep_cli.py.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sparsescale.sweep.store import Store

SPEC = """
name = "toy"
family = "gpt"
[grid]
sparsity = [0.0, 0.5, 0.75]
n_nonzero = ["50k", "100k", "200k"]
tokens = ["0.5M", "1M"]
[train]
lr = 0.01
"""


def cli(*args, env_extra=None, **kw):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-c", "from sparsescale.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def sweep(spec, store, sleep="0.02", workers="2"):
    return cli(
        "sweep",
        str(spec),
        "--store",
        str(store),
        "--workers",
        workers,
        "--runner",
        "toy_runner:run",
        env_extra={"TOY_STEP_SLEEP": sleep},
    )


def results(store):
    with Store(store, readonly=True) as s:
        rows = s.runs()
        curves = s.curves()
    return rows, curves


def write_spec(tmp_path, text=SPEC, name="toy.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_coordinator_sigkilled_three_times_completes_every_run_once(tmp_path):
    spec = write_spec(tmp_path)
    ref = sweep(spec, tmp_path / "ref.sqlite")
    assert ref.wait(60) == 0, ref.stderr.read()

    store = tmp_path / "crash.sqlite"
    rng = random.Random(1234)
    for _ in range(3):
        p = sweep(spec, store, sleep="0.05")
        # after start-up (which takes seconds on a loaded machine: wait for the store to
        # exist), somewhere inside the sweep
        deadline = time.monotonic() + 60
        while not store.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 2.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
    rows_mid, _ = results(store)
    assert any(r["status"] != "finished" for r in rows_mid), (
        "the kills came too late to interrupt anything"
    )
    final = sweep(spec, store, sleep="0.05")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err

    ref_rows, ref_curves = results(tmp_path / "ref.sqlite")
    rows, curves = results(store)
    assert len(rows) == len(ref_rows) == 18
    assert len({r["config_hash"] for r in rows}) == 18
    assert all(r["status"] == "finished" for r in rows)
    assert {r["config_hash"]: r["final_loss"] for r in rows} == {
        r["config_hash"]: r["final_loss"] for r in ref_rows
    }
    assert curves == ref_curves
    for r in rows:  # trained to completion exactly once, however often it was dispatched
        assert len((Path(r["out_dir"]) / "completions.log").read_text().split()) == 1
    # no orphan worker keeps training after its coordinator died
    for r in rows:
        pid = int((Path(r["out_dir"]) / "worker.pid").read_text())
        assert not _alive(pid), f"worker {pid} outlived its coordinator"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_killed_mid_run_is_retried_resumed_and_recorded_once(tmp_path):
    spec = write_spec(
        tmp_path,
        SPEC.replace("sparsity = [0.0, 0.5, 0.75]", "sparsity = [0.5]").replace(
            'n_nonzero = ["50k", "100k", "200k"]', 'n_nonzero = ["50k"]'
        ),
    )
    store = tmp_path / "s.sqlite"
    p = sweep(spec, store, sleep="0.3", workers="1")
    run_dir = victim = None
    deadline = time.time() + 60
    while time.time() < deadline and victim is None:
        for ckpt in (tmp_path / "s.runs").glob("*/ckpt.json"):
            if json.loads(ckpt.read_text())["step"] >= 3:
                run_dir = ckpt.parent
                victim = int((run_dir / "worker.pid").read_text())
                break
        time.sleep(0.05)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "failed (worker process died (killed by signal 9)); retrying" in err
    rows, _ = results(store)
    assert len(rows) == 2 and all(r["status"] == "finished" for r in rows)
    row = next(r for r in rows if Path(r["out_dir"]) == run_dir)
    assert row["attempts"] == 2 and row["failures"] == 1 and "signal 9" in row["failure_reason"]
    assert json.loads(row["result_json"])["resumed_from_step"] >= 3  # resumed from its checkpoint
    assert len((run_dir / "completions.log").read_text().split()) == 1


def test_two_sweeps_on_two_stores_do_not_interfere(tmp_path):
    spec = write_spec(tmp_path)
    a = sweep(spec, tmp_path / "a" / "s.sqlite", workers="1")
    b = sweep(spec, tmp_path / "b" / "s.sqlite", workers="1")
    assert a.wait(120) == 0 and b.wait(120) == 0, (a.stderr.read(), b.stderr.read())
    rows_a, curves_a = results(tmp_path / "a" / "s.sqlite")
    rows_b, curves_b = results(tmp_path / "b" / "s.sqlite")
    assert len(rows_a) == len(rows_b) == 18
    assert {r["config_hash"]: r["final_loss"] for r in rows_a} == {
        r["config_hash"]: r["final_loss"] for r in rows_b
    }
    assert curves_a == curves_b
    assert all(str(tmp_path / "a") in r["out_dir"] for r in rows_a)


def test_second_coordinator_on_the_same_store_refuses(tmp_path):
    spec = write_spec(tmp_path)
    store = tmp_path / "s.sqlite"
    first = sweep(spec, store, sleep="0.1", workers="1")
    lock = Path(str(store) + ".lock")
    deadline = time.time() + 30
    while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    second = sweep(spec, store)
    out, err = second.communicate(timeout=30)
    first.kill()
    first.wait()
    assert second.returncode == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"another sweep coordinator (pid {first.pid}) is using this store" in err


def test_run_that_keeps_failing_stops_at_the_limit_with_its_reason(tmp_path):
    spec = write_spec(
        tmp_path,
        SPEC.replace('n_nonzero = ["50k", "100k", "200k"]', 'n_nonzero = ["50k"]')
        .replace("sparsity = [0.0, 0.5, 0.75]", "sparsity = [0.5]")
        .replace('tokens = ["0.5M", "1M"]', 'tokens = ["1M"]')
        + "\n[[override]]\nsparsity = 0.5\nset = { lr = -1.0 }\n",
    )
    store = tmp_path / "s.sqlite"
    p = cli("sweep", str(spec), "--store", str(store), "--runner", "toy_runner:fail")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1
    rows, _ = results(store)
    assert rows[0]["status"] == "failed" and rows[0]["failures"] == 2
    assert "RuntimeError: lr -1.0 is negative" in rows[0]["failure_reason"]
    assert "re-run the same command to retry them (up to 2 attempts per run each time" in err
    # re-running retries, as the message says, again up to the limit it names
    p = cli("sweep", str(spec), "--store", str(store), "--runner", "toy_runner:fail")
    p.communicate(timeout=60)
    assert p.returncode == 1
    assert results(store)[0][0]["attempts"] == 4 and results(store)[0][0]["failures"] == 4


def test_diverged_run_is_recorded_as_diverged(tmp_path):
    spec = write_spec(
        tmp_path,
        SPEC + '\n[[override]]\nsparsity = 0.75\nn_nonzero = "200k"\ntokens = "1M"\nset = { lr = '
        "1000.0 }\n",
    )
    store = tmp_path / "s.sqlite"
    p = sweep(spec, store)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    rows, _ = results(store)
    diverged = [r for r in rows if r["status"] == "diverged"]
    assert (
        len(diverged) == 1
        and diverged[0]["sparsity"] == 0.75
        and diverged[0]["diverged_at_step"] == 3
    )
    assert sum(r["status"] == "finished" for r in rows) == 17
