"""Without PyTorch: the law commands run (they import no torch), and every
command that trains or times kernels says in one line that it needs PyTorch
and exits 2 (not a traceback, not an internal-error crash log)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# `import torch` fails as it does where torch is not installed.
NO_TORCH = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    blocker = tmp_path_factory.mktemp("no-torch")
    (blocker / "torch").mkdir()
    (blocker / "torch" / "__init__.py").write_text(NO_TORCH)
    path = os.pathsep.join([str(blocker), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path}


def run(env, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_the_blocker_blocks(env):
    done = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1 and "No module named 'torch'" in done.stderr


def test_the_law_commands_run_and_import_no_torch(env, tmp_path):
    """fit, predict, optimal, from-dense and choose-pattern in one process (a
    law file written by fit feeds the others); torch never gets imported."""
    law = tmp_path / "t5.json"
    script = f"""
import sys
from sparsescale.cli import main
for argv in (["fit", "paper:t5", "--json", "--out", {str(law)!r}],
             ["predict", "--law", {str(law)!r}, "--sparsity", "0.5", "--params", "2e7",
              "--data", "5e5", "--json"],
             ["optimal", "--law", "t5-c4", "--params", "1e7", "--compute", "10x", "--json"],
             ["from-dense", "--law", "t5-c4", "--dense", "1e5,8e5", "--compute", "1x"],
             ["choose-pattern", "--law", "t5-c4", "--patterns", {str(law)!r}, "--params", "1e7",
              "--compute", "10x"],
             ["next", "paper:t5", "--target", "equivalent-size:S=0.75", "--budget", "1e18",
              "--bootstrap", "20", "--json"]):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    print(argv[0], code, file=sys.stderr)
print("torch imported:", [m for m in sys.modules if m == "torch" or m.startswith("torch.")],
      file=sys.stderr)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    codes = dict(
        line.split()[:2]
        for line in lines
        if line.split()[0] in ("fit", "predict", "optimal", "from-dense", "choose-pattern", "next")
    )
    assert codes == {
        "fit": "0",
        "predict": "0",
        "optimal": "0",
        "next": "0",
        # refusals of the law, not of a missing torch: one line each, exit 2
        "from-dense": "2",
        "choose-pattern": "2",
    }, done.stderr
    assert (
        "holds no pruned-from-dense law" in done.stderr and "holds no pattern laws" in done.stderr
    )
    assert "needs PyTorch" not in done.stderr and lines[-1] == "torch imported: []", done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("train", "--params", "10k", "--steps", "2", "--out", "run"),
        ("sweep", "quick", "--dry-run"),
        ("demo", "--out", "demo"),
        ("bench-kernels", "--out", "speedups.json"),
    ],
)
def test_torch_commands_say_they_need_pytorch_in_one_line(env, tmp_path, argv):
    done = run(env, *argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "Traceback" not in done.stderr and "internal error" not in done.stderr
    ), done.stderr
    assert (
        lines[0].startswith(f"sparsescale {argv[0]} needs PyTorch")
        and "pip install 'sparsescale[torch]'" in lines[0]
    )
    assert list(tmp_path.iterdir()) == []  # refused before anything is written
