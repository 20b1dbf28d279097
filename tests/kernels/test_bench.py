"""bench-kernels: a valid speedups file from real timings, and hostile flags."""

import json
import subprocess
import sys

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.kernels.bench import BenchSettings, run_bench
from sparsescale.laws.costs import FORMAT, load_speedups

TINY = "32x64x128,32x128x64"


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_run_bench_measures_every_variant_and_aggregates_by_summed_time():
    settings = BenchSettings(
        shapes=((16, 32, 64), (16, 64, 32)), sparsities=(0.5, 0.9), repeats=2, min_sample_s=0.001
    )
    doc = run_bench(settings)
    rows = doc["measurements"]
    assert {(r["pattern"], r["sparsity"]) for r in rows} == {
        (p, s) for p in ("masked", "unstructured") for s in (0.5, 0.9)
    }
    assert len(rows) == 2 * 2 * 2  # two shapes, two patterns, two sparsities
    for s in (0.5, 0.9):
        picked = [r for r in rows if r["pattern"] == "unstructured" and r["sparsity"] == s]
        want = sum(r["dense_ms"] for r in picked) / sum(r["step_ms"] for r in picked)
        assert doc["speedups"]["unstructured"][f"{s:g}"] == pytest.approx(want)
    assert all(r["step_ms"] > 0 and r["dense_ms"] > 0 for r in rows)
    assert "CUDA" in doc["skipped"]["2:4"]
    assert doc["machine"]["torch"] and doc["settings"]["optimizer"] == "AdamW"


def test_nothing_measurable_is_an_error():
    with pytest.raises(SparsescaleError, match="no pattern could be measured on cpu"):
        run_bench(BenchSettings(shapes=((16, 32, 64),), patterns=("2:4",), repeats=1))


def test_cli_writes_a_loadable_file_and_reports_the_skip(tmp_path):
    out = tmp_path / "speedups.json"
    proc = cli(
        "bench-kernels",
        "--out",
        out,
        "--device",
        "cpu",
        "--shapes",
        TINY,
        "--sparsities",
        "0.5,0.95",
        "--repeats",
        "2",
        "--threads",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["format"] == FORMAT and doc["definition"].startswith(
        "speedup = time(dense step) / time(sparse step)"
    )
    assert doc["machine"]["device"] == "cpu" and doc["machine"]["torch_threads"] == 1
    speedups = load_speedups(out)
    assert sorted(speedups.table["unstructured"]) == [0.5, 0.95]
    cost = speedups.cost_model("unstructured")
    assert cost.c_mul(0.0) == pytest.approx(1.0) and cost.c_mul(0.9) > 0
    assert "skipped 2:4" in proc.stdout and "CUDA" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["speedups.json"]  # no temporary files left


@pytest.mark.parametrize(
    "args, match",
    [
        (["--shapes", "32x64"], "--shapes: '32x64' is not TOKENSxINxOUT"),
        (["--shapes", "32x0x64"], "--shapes: '32x0x64'"),
        (["--sparsities", "0.5,1"], "--sparsities: 1 is outside (0, 1)"),
        (["--sparsities", "lots"], "--sparsities: 'lots' is not a number"),
        (["--patterns", "3:2"], "--patterns: pattern '3:2': need 0 < n < m"),
        (["--device", "tpu"], "--device: expected cpu, cuda or auto"),
        (["--repeats", "0"], "--repeats: must be >= 1"),
        (["--repeats", "many"], "Invalid value for '--repeats'"),
        (["--bogus"], "No such option"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, args, match):
    out = tmp_path / "s.json"
    proc = cli("bench-kernels", "--out", out, "--shapes", TINY, *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and match in proc.stderr, proc.stderr
    assert not out.exists()


def test_out_directory_is_refused(tmp_path):
    proc = cli("bench-kernels", "--out", tmp_path, "--shapes", TINY)
    assert proc.returncode == 2 and "is a folder" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_kernel_that_refuses_is_reported_not_fatal():
    from sparsescale.kernels.bench import time_steps

    def broken():
        raise NotImplementedError("no CSR kernel for bfloat16\nsecond line")

    settings = BenchSettings(shapes=((4, 4, 4),), repeats=2, min_sample_s=0.0)
    times, failed = time_steps({"dense": lambda: None, "unstructured@0.5": broken}, settings)
    assert list(times) == ["dense"]
    assert failed == {"unstructured@0.5": "NotImplementedError: no CSR kernel for bfloat16"}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(tmp_path):
    proc = cli("bench-kernels", "--out", tmp_path / "s.json", "--device", "cuda", "--shapes", TINY)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--device cuda: torch.cuda.is_available() is False" in proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_only_unmeasurable_patterns_fail_before_timing(tmp_path):
    proc = cli(
        "bench-kernels", "--out", tmp_path / "s.json", "--patterns", "2:4,1:4", "--shapes", TINY
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no pattern could be measured on cpu" in proc.stderr and "1:4 has none" in proc.stderr
    assert not (tmp_path / "s.json").exists()
