#!/usr/bin/env bash
# Issue 11, PROTOCOL.md section 13: the past-the-step sweep (research/cpu-scale/past-step-gpu.toml)
# in one call on a lent GPU machine, about 9 minutes. Carries, prepared here first:
#   bash benchmarks/device_check.sh --prepare        # pydantic, typer, rich wheels -> .whl/
#   mkdir -p .devdata && (cd / && tar czf $OLDPWD/.devdata/linuxdoc.tgz usr/share/doc/linux-doc-6.1/html/_sources)
#   (cd ~/.cache/sparsescale/corpora && tar czf $OLDPWD/.devdata/cache.tgz <byte-corpus key> stat-*.json)
# then: run(command="bash research/cpu-scale/past_step_device.sh", carry=[".whl", ".devdata"], timeout_s=590)
# The store comes back under $OUT whether or not every run finished (the sweep is resumable).
# A plumbing check on a CPU: PY=.venv/bin/python SPEC=<a tiny spec> LIMIT=60 bash research/cpu-scale/past_step_device.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/past-step-out}; mkdir -p "$OUT"
PY=${PY:-python3}; SPEC=${SPEC:-research/cpu-scale/past-step-gpu.toml}
LIMIT=${LIMIT:-500}; WORKERS=${WORKERS:-14}; WORK=${WORK:-/tmp/past-step}
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
if ls .whl/*.whl >/dev/null 2>&1 && $PY -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
if [ ! -d /usr/share/doc/linux-doc-6.1/html/_sources ]; then
    tar xzf .devdata/linuxdoc.tgz -C /   # the default corpus at its Debian path, mtimes kept
    export SPARSESCALE_CACHE=$WORK/cache  # and its byte-token cache, so nothing is re-tokenised
    mkdir -p "$SPARSESCALE_CACHE/corpora" && tar xzf .devdata/cache.tgz -C "$SPARSESCALE_CACHE/corpora"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
command -v nvidia-smi >/dev/null && \
    (nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 > "$OUT/gpu.log" 2>&1 &)
echo "start $(date +%T), limit ${LIMIT}s, $WORKERS workers"
timeout -s TERM "$LIMIT" $PY -m sparsescale sweep "$SPEC" --store "$WORK/store.sqlite" --workers "$WORKERS" \
    > "$OUT/sweep.log" 2>&1
echo "sweep rc=$? at $(date +%T)"
tail -5 "$OUT/sweep.log"
# a consistent copy even if the sweep was stopped with its WAL open
$PY -c "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$WORK/store.sqlite" "$OUT/past-step-gpu.sqlite"
$PY -m sparsescale export "$OUT/past-step-gpu.sqlite" > "$OUT/past-step-gpu.csv" 2> "$OUT/export.err"
echo "finished runs: $(($(wc -l < "$OUT/past-step-gpu.csv") - 1))"
