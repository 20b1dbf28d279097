"""Durable storage for run folders (sparsescale.storage) and the worker's staged
mode: a run trained in one node's scratch and mirrored to a storage URI resumes
on another node from what reached storage. fsspec's memory:// and file://
filesystems stand in for an object store; the multi-node test is test_cluster.py."""

import json
import os
import subprocess
import sys
import uuid

import pytest

fsspec = pytest.importorskip("fsspec")

from toy_runner import STEPS, toy_loss  # noqa: E402

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.storage import RunMirror, check_location, is_uri, join, read_bytes, scratch_root  # noqa: E402
from sparsescale.sweep.worker import RunTask, execute  # noqa: E402

TOY = "toy_runner:run"
CONFIG = {"model": "gpt", "sparsity": 0.5, "params": 50_000, "tokens": 1_000_000, "seed": 0}


def mem_uri(name: str) -> str:
    return f"memory://sparsescale-test-{uuid.uuid4().hex[:8]}/{name}"


def test_join_keeps_the_double_slash_of_a_uri_and_paths_stay_paths(tmp_path):
    assert join("s3://bucket/sweep/", "abc") == "s3://bucket/sweep/abc"
    assert join("file:///a/b", "c") == "file:///a/b/c"
    assert join(str(tmp_path), "c") == str(tmp_path / "c")
    assert is_uri("gs://x") and not is_uri(str(tmp_path))


def test_scratch_and_corpus_cache_follow_the_node_setting(tmp_path, monkeypatch):
    from sparsescale.data.corpus import cache_root

    monkeypatch.setenv("SPARSESCALE_SCRATCH", str(tmp_path / "node-a"))
    monkeypatch.delenv("SPARSESCALE_CACHE", raising=False)
    assert scratch_root() == tmp_path / "node-a"
    assert cache_root() == tmp_path / "node-a" / "cache"
    monkeypatch.setenv("SPARSESCALE_CACHE", str(tmp_path / "explicit"))
    assert cache_root() == tmp_path / "explicit"  # an explicit cache wins


def test_mirror_pushes_changed_files_only_and_pull_replaces_the_local_folder(tmp_path):
    uri = mem_uri("run")
    fs = fsspec.filesystem("memory")
    a = RunMirror(uri, tmp_path / "a")
    a.pull()
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"v1")
    (tmp_path / "a" / "worker.pid").write_text("1\n")  # bookkeeping: never durable
    (tmp_path / "a" / ".checkpoint.pt.x.tmp").write_bytes(b"half")  # an atomic write in progress
    a.push()
    listed = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(uri.removeprefix("memory:/"), detail=False))
    assert listed == ["checkpoint.pt"]
    fs.rm(uri.removeprefix("memory:/") + "/checkpoint.pt")
    a.push()  # unchanged since its last push: not uploaded again
    assert not fs.exists(uri.removeprefix("memory:/") + "/checkpoint.pt")
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"v22")
    a.push()
    assert read_bytes(join(uri, "checkpoint.pt")) == b"v22"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "stale.pt").write_bytes(b"old node leftovers")
    b = RunMirror(uri, tmp_path / "b")
    assert b.pull() == ["checkpoint.pt"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["checkpoint.pt"]
    assert (tmp_path / "b" / "checkpoint.pt").read_bytes() == b"v22"


def test_a_staged_run_leaves_its_files_in_storage_and_nothing_in_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_SLEEP", "0.001")
    monkeypatch.setenv("SPARSESCALE_SCRATCH", str(tmp_path / "node-a"))
    uri = f"file://{tmp_path}/storage/run1"
    result, attempt = execute(RunTask("h" * 64, CONFIG, uri, TOY))
    assert result["final_loss"] == pytest.approx(toy_loss(0.5, 50_000, 1_000_000))
    assert attempt["resumed"] is False
    stored = tmp_path / "storage" / "run1"
    assert json.loads((stored / "result.json").read_text())["final_loss"] == result["final_loss"]
    assert json.loads((stored / "ckpt.json").read_text()) == {"step": STEPS}
    assert not list((tmp_path / "node-a" / "runs").glob("h*")), (
        "scratch keeps nothing once storage has it"
    )
    # Another node: the result comes from storage; nothing is trained again.
    monkeypatch.setenv("SPARSESCALE_SCRATCH", str(tmp_path / "node-b"))
    again, attempt = execute(RunTask("h" * 64, CONFIG, uri, TOY))
    assert again["final_loss"] == result["final_loss"] and again["curve"] == result["curve"]
    assert attempt["resumed"] is True
    assert (stored / "completions.log").read_text().count("\n") == 1


def test_a_run_resumes_on_another_node_from_its_durable_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_SLEEP", "0.001")
    uri = mem_uri("run")
    fsspec.filesystem("memory").pipe(uri.removeprefix("memory:/") + "/ckpt.json", b'{"step": 6}')
    monkeypatch.setenv("SPARSESCALE_SCRATCH", str(tmp_path / "node-b"))
    (tmp_path / "node-b" / "runs" / ("h" * 16)).mkdir(parents=True)
    (tmp_path / "node-b" / "runs" / ("h" * 16) / "ckpt.json").write_text(
        '{"step": 9}'
    )  # not durable: dropped
    result, attempt = execute(RunTask("h" * 64, CONFIG, uri, TOY))
    assert result["resumed_from_step"] == 6 and attempt["resumed"] is True


def test_a_dense_prefix_is_read_from_storage(tmp_path):
    torch = pytest.importorskip("torch")
    from sparsescale.train.checkpoint import load_init_checkpoint

    uri = mem_uri("dense/checkpoint.pt")
    buf = fsspec.open(uri, "wb")
    with buf as f:
        torch.save({"family": "gpt", "model": {"w": torch.arange(3.0)}}, f)
    assert torch.equal(load_init_checkpoint(uri)["model"]["w"], torch.arange(3.0))
    with pytest.raises(SparsescaleError, match="--init-from memory://.*no such file"):
        load_init_checkpoint(mem_uri("missing.pt"))


def test_a_node_with_other_tokens_refuses_to_train(tmp_path):
    from sparsescale.sweep.worker import train_run

    config = {
        "model": "gpt",
        "params": 8000,
        "steps": 2,
        "batch": 4,
        "seq_len": 32,
        "eval_tokens": 256,
    }
    with pytest.raises(SparsescaleError, match="corpus default: this node's tokens .* differ"):
        train_run(config, str(tmp_path / "run"), data_fingerprint="0" * 32)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_unknown_protocol_is_one_line_naming_the_flag(tmp_path):
    with pytest.raises(SparsescaleError, match="storage nosuchproto://x: cannot open"):
        check_location("nosuchproto://x")
    spec = tmp_path / "s.toml"
    spec.write_text('family = "gpt"\n[grid]\nn_nonzero = ["50k"]\ntokens = ["1M"]\n')
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "sweep",
            str(spec),
            "--store",
            str(tmp_path / "s.sqlite"),
            "--storage",
            "nosuchproto://bucket/x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "--storage nosuchproto://bucket/x" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("how", ["flag", "spec"])
def test_storage_from_the_flag_or_the_spec_holds_every_run_folder(tmp_path, how):
    spec = tmp_path / "s.toml"
    storage = tmp_path / "shared" / "sweep"
    spec.write_text(
        ("" if how == "flag" else f'storage = "{storage}"\n')
        + 'family = "gpt"\n[grid]\nsparsity = [0.0, 0.5]\nn_nonzero = ["50k"]\ntokens = ["1M"]\n'
    )
    extra = ["--storage", str(storage)] if how == "flag" else []
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "sweep",
            str(spec),
            "--store",
            str(tmp_path / "s.sqlite"),
            "--runner",
            TOY,
            "--workers",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TOY_STEP_SLEEP": "0.001"},
    )
    assert p.returncode == 0, p.stderr
    folders = sorted(storage.iterdir())
    assert len(folders) == 2 and all(
        (f / "result.json").exists() and (f / "ckpt.json").exists() for f in folders
    )
    assert not (tmp_path / "s.runs").exists()
    from sparsescale.sweep.store import Store

    with Store(tmp_path / "s.sqlite", readonly=True) as s:
        assert sorted(r["out_dir"] for r in s.runs()) == [str(f) for f in folders]
        assert [a["outcome"] for a in s.attempt_log()] == ["finished", "finished"]
