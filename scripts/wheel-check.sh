#!/usr/bin/env bash
# Install the package as a new user would: build the sdist and wheel, install the
# wheel into a fresh venv WITHOUT torch, and run the law commands from it. Catches
# an import that is not declared in pyproject.toml (the dev venv has every extra,
# so the test suite cannot), research files leaking into the distributions, and a
# torch-needing command that crashes instead of saying how to install torch.
# Usage: bash scripts/wheel-check.sh [PYTHON]   (PYTHON builds; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" -m build --sdist --wheel -o "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
if grep -qi "deprecat" "$work/build.log"; then
    grep -i "deprecat" "$work/build.log"; echo "wheel-check: the build prints a deprecation warning"; exit 1
fi
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
# Nothing from research/ ships.
if tar tzf "$sdist" | grep -E '^[^/]+/(research|benchmarks)/'; then
    echo "wheel-check: research files in the sdist"; exit 1
fi
if "$PY" -m zipfile -l "$wheel" | grep -E ' research/'; then
    echo "wheel-check: research files in the wheel"; exit 1
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" 2>&1 | grep -v "^WARNING: Location" || true
bin="$work/venv/bin"
if "$bin/python" -c "import torch" 2>/dev/null; then
    echo "wheel-check: the wheel pulled torch in"; exit 1
fi
# The laws commands work without torch ...
"$bin/sparsescale" fit paper:t5 > "$work/fit.txt"
grep -q "bN" "$work/fit.txt" || { cat "$work/fit.txt"; echo "wheel-check: fit printed no coefficients"; exit 1; }
"$bin/sparsescale" predict --law t5-c4 --sparsity 0.5 --params 2e7 --data 5e5 > "$work/predict.txt"
grep -qi "loss" "$work/predict.txt" || { cat "$work/predict.txt"; echo "wheel-check: predict printed no loss"; exit 1; }
# ... and a command that needs torch says so in one line, with exit status 2.
set +e
"$bin/sparsescale" train --model gpt --params 10k --tokens 10k --out "$work/run" > "$work/train.out" 2> "$work/train.err"
rc=$?
set -e
if [ "$rc" != 2 ] || [ "$(wc -l < "$work/train.err")" != 1 ] || ! grep -qi "torch" "$work/train.err"; then
    echo "wheel-check: 'train' without torch gave exit $rc and:"; cat "$work/train.err"; exit 1
fi
echo "wheel-check: ok ($(basename "$wheel"); fit, predict without torch; train refuses in one line)"
