"""sweep: unreadable specs, grids too large to plan, Ctrl-C, and failed runs
that a re-run retries (a corrupt checkpoint is set aside, not fatal)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pytest
from hostile_helpers import cli, cli_argv, default_sigint, one_line


def test_unreadable_specs(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "\xff"\n')
    one_line(cli("sweep", bad, "--dry-run"), 2, str(bad), "UTF-8")
    one_line(cli("sweep", tmp_path, "--dry-run"), 2, str(tmp_path), "folder")


def _big(tmp_path, corpus, n=10):
    axis = lambda fmt: "[" + ", ".join(f'"{fmt(i)}"' for i in range(n)) + "]"  # noqa: E731
    spec = tmp_path / "big.toml"
    spec.write_text(
        'name = "big"\nfamily = "gpt"\n[grid]\n'
        f"sparsity = [{', '.join(str(i / n) for i in range(n))}]\n"
        f"n_nonzero = {axis(lambda i: f'{10 + i}k')}\ntokens = {axis(lambda i: f'{2 + i}k')}\n"
        f"seeds = [{', '.join(map(str, range(n)))}]\n"
        f"init_from_dense = [{', '.join(str(i / n) for i in range(n))}]\n"
        f'[train]\nbatch = 4\nseq_len = 32\ncorpus = "{corpus}"\n'
    )
    return spec


def test_a_million_run_dry_run_is_refused_at_once(tmp_path, corpus):
    spec = _big(tmp_path, corpus, n=16)  # 16^5 = 1,048,576 runs
    t0 = time.time()
    one_line(cli("sweep", spec, "--dry-run", timeout=60), 2, "1,048,576 runs", "at most")
    assert time.time() - t0 < 30


@pytest.mark.slow
def test_ctrl_c_during_a_large_dry_run(tmp_path, corpus):
    spec = _big(tmp_path, corpus, n=10)
    spec.write_text(
        spec.read_text()
        .replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "seeds = [0]")
        .replace("init_from_dense = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]", "")
    )
    p = subprocess.Popen(
        cli_argv("sweep", spec, "--dry-run", "--store", tmp_path / "s.sqlite"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    time.sleep(6)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    one_line(subprocess.CompletedProcess(p.args, p.returncode, "", err), 130, "interrupted")


@pytest.mark.slow
def test_failed_run_with_a_corrupt_checkpoint_is_retried_on_rerun(tmp_path, corpus):
    spec = tmp_path / "one.toml"
    spec.write_text(
        f'name = "one"\nfamily = "gpt"\n[grid]\nsparsity = [0.5]\nn_nonzero = ["10k"]\n'
        f'tokens = ["768"]\n[train]\nbatch = 4\nseq_len = 32\neval_tokens = 256\n'
        f'corpus = "{corpus}"\n'
    )
    store = tmp_path / "s.sqlite"
    done = cli("sweep", spec, "--store", store, "--workers", "1")
    assert done.returncode == 0, done.stderr
    # the state the issue found: failed to its limit, checkpoint truncated, no result
    run_dir = next((tmp_path / "s.runs").iterdir())
    (run_dir / "result.json").unlink()
    with open(run_dir / "checkpoint.pt", "r+b") as f:
        f.truncate(100)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "UPDATE runs SET status='failed', failures=2, failure_reason='UnpicklingError'"
        )
    conn.close()
    done = cli("sweep", spec, "--store", store, "--workers", "1")
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "finished"
    conn.close()


@pytest.mark.slow
def test_ctrl_c_of_a_running_sweep_stops_workers_quietly(tmp_path, corpus):
    """Ctrl-C in a terminal signals the whole process group: the coordinator
    answers it (workers checkpoint on its SIGTERM); no worker prints a traceback."""
    import os

    spec = tmp_path / "two.toml"
    spec.write_text(
        f'name = "two"\nfamily = "gpt"\n[grid]\nsparsity = [0.0, 0.5]\nn_nonzero = ["10k"]\n'
        f'tokens = ["150k"]\n[train]\nbatch = 4\nseq_len = 32\neval_tokens = 256\n'
        f'corpus = "{corpus}"\n'
    )
    store = tmp_path / "s.sqlite"
    p = subprocess.Popen(
        cli_argv("sweep", spec, "--store", store, "--workers", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.time() + 120
    runs = tmp_path / "s.runs"
    while time.time() < deadline and len(list(runs.glob("*/worker.pid"))) < 2:
        time.sleep(0.2)
    time.sleep(2)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == "sparsescale: interrupted"


@pytest.mark.parametrize(
    "line, needle",
    [
        ('name = "a/b"', "name"),
        ("max_failures = 0", "max_failures"),
        ("workers = 100000000", "workers"),
    ],
)
def test_spec_values_without_meaning(tmp_path, corpus, line, needle):
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'{line}\nfamily = "gpt"\n[grid]\nsparsity = [0.0]\nn_nonzero = ["10k"]\ntokens = ["768"]\n'
        f'[train]\nbatch = 4\nseq_len = 32\ncorpus = "{corpus}"\n'
    )
    one_line(cli("sweep", spec, "--dry-run"), 2, needle)


def test_workers_beyond_reason(tmp_path, corpus):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nfamily = "gpt"\n[grid]\nsparsity = [0.0]\nn_nonzero = ["10k"]\ntokens = '
        '["768"]\n'
        f'[train]\nbatch = 4\nseq_len = 32\ncorpus = "{corpus}"\n'
    )
    one_line(cli("sweep", spec, "--workers", "1000000"), 2, "--workers")
