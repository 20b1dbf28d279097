#!/usr/bin/env bash
# The gpu-law sweep, its report and the 10x run in one call on one H100/H200
# (research/gpu-law/PROTOCOL.md), within BUDGET_S (470 s) of wall time; every
# output lands under $OUT:
#   calibrate.txt   (CALIBRATE=1) `sweep --dry-run --calibrate`: the device's own time estimate
#   sweep.log, gpu-law.sqlite, gpu-law.csv          the 96-run sweep (best lr per point)
#   law.json, prediction-10x.json, optimal-10x.json the whole sweep's law, the 10x run's
#                   predicted loss and 95% interval (written BEFORE the 10x run starts),
#                   and S_opt at the 10x run's N and compute
#   report/         `sparsescale report` (summary.json, report.html, figures)
#   tenx.log, tenx.sqlite, tenx.csv                 the 10x run (both lrs)
#   targets.json    research/gpu-law/targets.py: every target, pass or fail
#   timeline.txt    when each stage started
#
# Prepare HERE (a machine with PyPI and the Debian packages), once:
#   bash benchmarks/device_check.sh --prepare     # pydantic & co. -> .whl/ (the image lacks pydantic)
#   bash research/gpu-law/make_corpus.sh          # -> .corpus/gpu-law.tar.xz (7.3 MB)
# then on the device:
#   run(command="bash research/gpu-law/device.sh", carry=[".whl", ".corpus/gpu-law.tar.xz"], timeout_s=540)
# The sweep is resumable: a second call on a warm machine finishes what a first one left.
#
# --cpu-dry-run: the same path on a CPU at toy sizes (2 S x 3 N x 3 D, 2-4 steps a run, a
# 2-step 10x run, 20 bootstrap draws), on a corpus made from this Python's own sources;
# the test suite runs it. No figure from it means anything.
# Knobs (environment): PY (python3), BUDGET_S (470), TAIL_S (120: seconds kept back from
# the sweep for fit, prediction, report and the 10x run), WORK (scratch), CALIBRATE (0; 1 adds
# `sweep --dry-run --calibrate` first, ~25 s, to calibrate.txt),
# BOOT (200), WORKERS (default: the spec's gpus_per_run packing).
set -u
cd "$(dirname "$0")/../.."
START=$(date +%s)
DRY=0; [ "${1:-}" = "--cpu-dry-run" ] && DRY=1
OUT=${OUT:-/tmp/gpu-law-out}; mkdir -p "$OUT"
WORK=${WORK:-/tmp/gpu-law-work}; mkdir -p "$WORK"
PY=${PY:-python3}; BUDGET_S=${BUDGET_S:-470}; TAIL_S=${TAIL_S:-120}; BOOT=${BOOT:-200}
CALIBRATE=${CALIBRATE:-0}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 SPARSESCALE_CACHE=${SPARSESCALE_CACHE:-$WORK/cache}
exec > >(tee "$OUT/device.log") 2>&1
stage() { echo "$(( $(date +%s) - START ))s $*" | tee -a "$OUT/timeline.txt"; }
left() { echo $(( BUDGET_S - $(date +%s) + START )); }

# the wheels are for the device image's Python 3.12 (it has torch, scipy, tokenizers, but no pydantic)
if ls .whl/*.whl >/dev/null 2>&1 && $PY -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
SS="$PY -m sparsescale"
stage "start (dry=$DRY)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, pydantic, tokenizers, scipy, sparsescale.cli; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "imports failed: prepare .whl (see the head of this script)"; exit 1; }

SPEC=gpu-law; TENX=research/gpu-law/tenx.toml
# the 10x run, as fixed in PROTOCOL.md section 2 (tenx.toml says the same)
TENX_S=0.5; TENX_N=10M; TENX_D=6M; TENX_C=3.6e14   # 6 N D = 10 x 6 (1M) (6M)
if [ "$DRY" = 1 ]; then
    # toy specs beside the real ones, same recipe keys; a text corpus from this Python's sources
    CORPUS=$WORK/corpus; rm -rf "$CORPUS" "$WORK"/*.sqlite "$WORK"/*.runs; mkdir -p "$CORPUS"
    $PY - "$CORPUS" <<'EOF'
import pathlib, sys, sysconfig
out = pathlib.Path(sys.argv[1]); total = 0
for i, p in enumerate(sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))):
    text = p.read_text(errors="ignore"); (out / f"{i:04d}.txt").write_text(text); total += len(text)
    if total > 600_000:
        break
EOF
    toy() {  # name, S list, N list, D list, gpus_per_run
        cat <<EOF
name = "$1"
family = "gpt"
corpus = "$CORPUS"
[grid]
sparsity = $2
n_nonzero = $3
tokens = $4
lr = [0.02]
seeds = [0]
[train]
tokenizer = "research/gpu-law/tokenizer.json"
seq_len = 16
depth = 1
head_dim = 8
mlp = "geglu"
pos = "rope"
batch = 2
optimizer = "adafactor"
eval_tokens = 256
final_eval_tokens = 256
device = "cpu"
threads = 1
EOF
    }
    SPEC=$WORK/gpu-law-toy.toml; TENX=$WORK/tenx-toy.toml
    toy gpu-law-toy "[0.0, 0.5]" '["2k", "4k", "8k"]' "[64, 96, 128]" > "$SPEC"
    TENX_S=0.5; TENX_N=16k; TENX_D=64; TENX_C=6.1e6   # toy: 6 N D of the toy 10x run (the path, not the ratio)
    toy tenx-toy "[0.5]" '["16k"]' "[64]" > "$TENX"
    CALIBRATE=0; BOOT=${BOOT_DRY:-20}; export CUDA_VISIBLE_DEVICES=
fi

stage "tokenise the corpus"
if [ "$DRY" = 0 ]; then
    if [ ! -d .corpus/gpu-law ]; then
        [ -f .corpus/gpu-law.tar.xz ] || { echo "no .corpus/gpu-law.tar.xz: run research/gpu-law/make_corpus.sh and carry it"; exit 1; }
        tar xJf .corpus/gpu-law.tar.xz -C .corpus gpu-law || { echo "corpus unpack failed"; exit 1; }
    fi
    CORPUS=.corpus/gpu-law
fi
# once, before the workers start (16 at once would each wait on the cache lock)
$PY -c "
import sys; from sparsescale.data.corpus import load_corpus
c = load_corpus(sys.argv[1], 'research/gpu-law/tokenizer.json')
print(f'corpus {c.source}: {len(c.tokens):,} tokens, {c.n_train:,} for training, vocabulary {c.vocab_size}')
" "$CORPUS" || exit 1

if [ "$CALIBRATE" = 1 ]; then
    stage "calibrate"
    timeout 60 $SS sweep "$SPEC" --dry-run --calibrate --store "$WORK/calibrate.sqlite" > "$OUT/calibrate.txt" 2>&1
    tail -4 "$OUT/calibrate.txt"
fi

stage "sweep ($(( $(left) - TAIL_S ))s allowed)"
WFLAG=${WORKERS:+--workers $WORKERS}
[ "$DRY" = 1 ] && WFLAG="--workers 2"
timeout -s TERM $(( $(left) - TAIL_S > 10 ? $(left) - TAIL_S : 10 )) \
    $SS sweep "$SPEC" --store "$WORK/gpu-law.sqlite" $WFLAG > "$OUT/sweep.log" 2>&1
RC=$?; echo "sweep rc=$RC"; tail -3 "$OUT/sweep.log"
# 2: refused before training (no GPU, a bad spec): nothing to fit. 124: stopped at the guard,
# the finished runs go on to the fit (the store is resumable).
[ "$RC" = 2 ] && { echo "the sweep refused to start: nothing to fit"; exit 2; }
# a consistent copy even if the sweep was stopped with its WAL open
$PY -c "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$WORK/gpu-law.sqlite" "$OUT/gpu-law.sqlite"
$SS export "$OUT/gpu-law.sqlite" --csv "$OUT/gpu-law.csv"
echo "finished points (best lr): $(( $(wc -l < "$OUT/gpu-law.csv") - 1 ))"

stage "fit the whole sweep and write the 10x prediction"
$SS fit "$OUT/gpu-law.sqlite" --sparsity sparsity --params n_nonzero --data tokens --loss loss --bootstrap "$BOOT" --out "$OUT/law.json" > "$OUT/fit.txt" 2>&1 || { cat "$OUT/fit.txt"; exit 1; }
$SS predict --law "$OUT/law.json" --sparsity "$TENX_S" --params "$TENX_N" --data "$TENX_D" --json \
    > "$OUT/prediction-10x.json" || exit 1
$SS optimal --law "$OUT/law.json" --params "$TENX_N" --compute "$TENX_C" --json > "$OUT/optimal-10x.json" \
    2> "$OUT/optimal-10x.err" || cat "$OUT/optimal-10x.err"
cat "$OUT/prediction-10x.json"; echo

stage "10x run (background) and the report"
# the prediction is on disk; only now does the 10x run start. It trains on the GPU
# while the report's bootstrap uses the CPUs.
TENX_WFLAG=""; [ "$DRY" = 1 ] && TENX_WFLAG="--workers 1"
timeout -s TERM $(( $(left) > 20 ? $(left) : 20 )) \
    $SS sweep "$TENX" --store "$WORK/tenx.sqlite" $TENX_WFLAG > "$OUT/tenx.log" 2>&1 &
TENX_PID=$!
$SS report "$OUT/gpu-law.sqlite" --out "$OUT/report" --bootstrap "$BOOT" > "$OUT/report.log" 2>&1 \
    || tail -3 "$OUT/report.log"
stage "report written; waiting for the 10x run"
wait $TENX_PID; echo "10x rc=$?"; tail -3 "$OUT/tenx.log"
$PY -c "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$WORK/tenx.sqlite" "$OUT/tenx.sqlite"
$SS export "$OUT/tenx.sqlite" --csv "$OUT/tenx.csv" || true

stage "targets"
$PY research/gpu-law/targets.py "$OUT"
stage "done"
