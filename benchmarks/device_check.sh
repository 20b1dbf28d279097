#!/usr/bin/env bash
# Issue 14's device checks in one run, about 7-8 minutes on one H100; prints every figure.
#
#   1. semi-structured parity tests (tests/kernels on CUDA: 2:4 swap == masked dense up to bf16);
#   2. benchmarks/semi_structured_bench.py: 2:4 FFN fwd+bwd at GPT-2 / ViT-L MLP shapes against
#      dense (target >= 1.2x) and a whole 2:4 GPT training step against masked dense (>= 1.06x);
#   3. `sparsescale bench-kernels` on the GPU, and S_opt from `optimal --flops measured` next to
#      the sparse- and dense-FLOPs answers for the same N and C;
#   4. `sparsescale train --device cuda --compile` on a ~100M GPT (12 x 768, context 1024, bf16):
#      MFU through the CLI (steady state from two run lengths, and as reported incl. compile), and
#      the final loss of a run equal to the same run SIGTERMed at a checkpoint and resumed;
#      a two-process DDP run only if the machine has two GPUs (else skipped with the reason).
#
# The device image has torch but not pydantic (and maybe older typer/rich). Prepare wheels HERE,
# on a machine with PyPI, once per session (they land in .whl/, which .gitignore ignores):
#     bash benchmarks/device_check.sh --prepare
# then run it on the device with the wheels carried:
#     run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=600)
# Environment knobs: SECTIONS (default 1234: which of the four to run; e.g. SECTIONS=123 then
# SECTIONS=4 splits it over two calls if compiling is slow), STEPS (default 200), SHORT (50),
# BATCH (32), OPT (adafactor), and for a dry run
# of the script's plumbing on a CPU (minutes, no figures worth reading):
#     PY=.venv/bin/python DEVICE=cpu PARAMS=20k DEPTH=2 HEAD_DIM=16 SEQ=64 BATCH=4 STEPS=40 SHORT=10 \
#     COMPILE=--no-compile BENCH_SHAPES=32x64x128 CORPUS_MB=3 bash benchmarks/device_check.sh
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    mkdir -p .whl
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
        typing_extensions==4.16.0 typer==0.29.2 click==8.5.1 rich==15.0.0 shellingham==1.5.4 \
        annotated-doc==0.0.7 markdown-it-py==4.3.0 mdurl==0.1.2
    ls -la .whl
    exit 0
fi

OUT=${OUT:-/tmp/device-check-out}
mkdir -p "$OUT"
STEPS=${STEPS:-200}; SHORT=${SHORT:-50}; BATCH=${BATCH:-32}; OPT=${OPT:-adafactor}; PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}; PARAMS=${PARAMS:-84934656}; DEPTH=${DEPTH:-12}; HEAD_DIM=${HEAD_DIM:-64}; SEQ=${SEQ:-1024}
COMPILE=${COMPILE:---compile}; CORPUS_MB=${CORPUS_MB:-40}; SECTIONS=${SECTIONS:-1234}
want() { case "$SECTIONS" in *"$1"*) return 0 ;; *) return 1 ;; esac; }
BENCH_SHAPES_FLAG=${BENCH_SHAPES:+--shapes $BENCH_SHAPES}
WORK=${WORK:-/tmp/sparsescale-device-check}  # scratch: corpus, runs, token cache
mkdir -p "$WORK"
export WORK PYTHONUNBUFFERED=1 SPARSESCALE_CACHE=$WORK/cache
# the wheels are for the device image's Python 3.12; a dry run elsewhere uses its own environment
if ls .whl/*.whl >/dev/null 2>&1 && $PY -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD/src || { echo "wheel install failed"; exit 1; }
else
    export PYTHONPATH=$PWD/src
fi
SS="$PY -m sparsescale"
section() { echo; echo "=================== $* ($(date +%T))"; }

section "machine"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    NGPU=$(nvidia-smi -L | wc -l)
else
    echo "no nvidia-smi"; NGPU=0
fi
$PY -c "import torch, pydantic, typer, sparsescale.cli; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())" \
    || { echo "imports failed: run 'bash benchmarks/device_check.sh --prepare' here and carry .whl"; exit 1; }

if want 1; then
section "1. semi-structured parity tests (CUDA)"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/kernels -rs 2>&1 | tail -8
fi

if want 2; then
section "2. 2:4 kernels against dense (FFN fwd+bwd; whole 2:4 GPT step)"
timeout 150 $PY benchmarks/semi_structured_bench.py --steps 20
fi

if want 3; then
section "3. bench-kernels on the GPU, and S_opt from it"
timeout 120 $SS bench-kernels --device "$DEVICE" --out "$OUT/speedups.json" --repeats 5 $BENCH_SHAPES_FLAG
for NC in "1e7 1e18" "1e8 1e20"; do
    set -- $NC
    for FL in sparse dense; do
        $SS optimal --law vit-jft --params "$1" --compute "$2" --flops $FL --json \
            | $PY -c "import json,sys; d=json.load(sys.stdin); print(f'N=$1 C=$2 flops=$FL: S_opt={d[\"sparsity\"]:.4f} loss={d[\"loss\"]:.5f}')"
    done
    if ! $SS optimal --law vit-jft --params "$1" --compute "$2" --flops measured --speedups "$OUT/speedups.json" --json \
        > $WORK/opt.json 2>$WORK/opt.err; then
        echo "(optimal --flops measured: $(head -1 $WORK/opt.err); computing through the library instead)"
        $PY - "$1" "$2" "$OUT/speedups.json" > $WORK/opt.json <<'EOF'
import json, sys
from sparsescale.laws import planning
from sparsescale.laws.costs import CostModel, load_speedups
from sparsescale.laws.forms import preset
N, C, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
cost = load_speedups(path).cost_model("unstructured")
c0 = planning.c_mul  # route CostModel objects, as the planning patch of issue 14 does
planning.c_mul = lambda S, f="sparse", *a, **k: f.c_mul(S) if isinstance(f, CostModel) else c0(S, f, *a, **k)
print(json.dumps(planning.optimal_sparsity(preset("vit-jft"), N, C, cost).to_dict(), default=str))
EOF
    fi
    $PY -c "import json; d=json.load(open('$WORK/opt.json')); print(f'N=$1 C=$2 flops=measured (unstructured, this GPU): S_opt={d[\"sparsity\"]:.4f} loss={d[\"loss\"]:.5f}')"
done

fi

if want 4; then
section "4. sparsescale train --device cuda --compile, ~100M GPT"
rm -rf "$WORK"/corpus "$WORK"/run-*  # a warm machine keeps them: no stale resumes
mkdir -p "$WORK/corpus"
$PY - "$CORPUS_MB" <<'EOF'
# ~40 MB of real text for a single pass: this Python's and its packages' sources, as .txt
import os, pathlib, sys, sysconfig
out, size, limit = pathlib.Path(os.environ["WORK"]) / "corpus", 0, float(sys.argv[1]) * 1e6
roots = [pathlib.Path(sysconfig.get_paths()["stdlib"]), pathlib.Path(sysconfig.get_paths()["purelib"])]
for root in roots:
    for i, f in enumerate(sorted(root.rglob("*.py"))):
        try:
            text = f.read_bytes()
        except OSError:
            continue
        (out / f"{root.name}-{i:06d}.txt").write_bytes(text)
        size += len(text)
        if size > limit:
            break
    if size > limit:
        break
print(f"corpus: {size / 1e6:.1f} MB")
EOF
TRAIN="$SS train --model gpt --params $PARAMS --depth $DEPTH --head-dim $HEAD_DIM --seq-len $SEQ --batch $BATCH --device $DEVICE $COMPILE --optimizer $OPT --corpus $WORK/corpus --eval-tokens 65536 --quiet"
timeout 150 $TRAIN --steps "$SHORT" --eval-every "$SHORT" --ckpt-every "$SHORT" --out $WORK/run-short
timeout 200 $TRAIN --steps "$STEPS" --eval-every "$STEPS" --ckpt-every "$STEPS" --out $WORK/run-a
# the same run, stopped by SIGTERM once its first checkpoint exists, then resumed by the same command
B="$TRAIN --steps $STEPS --eval-every $STEPS --ckpt-every $SHORT --out $WORK/run-b"
$B & PID=$!
for _ in $(seq 1 150); do [ -f $WORK/run-b/checkpoint.pt ] && break; sleep 1; done
kill -TERM $PID 2>/dev/null; wait $PID; echo "interrupted run exit status $?"
timeout 200 $B
$PY - "$SHORT" "$STEPS" "$BATCH" <<'EOF'
import json, os, sys
short, steps, batch = map(int, sys.argv[1:])
work = os.environ["WORK"]
a, s = (json.load(open(f"{work}/run-{k}/result.json")) for k in ("a", "short"))
try:
    b = json.load(open(f"{work}/run-b/result.json"))
except OSError:
    b = None
m = a["model_config"]
linear = m["depth"] * (4 * m["width"] ** 2 + 2 * m["width"] * m["mlp_hidden"]) + m["vocab_size"] * m["width"]
flops_per_token = 6 * linear + 12 * m["depth"] * a["seq_len"] * m["width"]  # PaLM accounting, as train_bench.py
peak = 989e12  # H100 SXM dense bf16
tokens = lambda r: r["steps"] * r["batch"] * r["seq_len"]  # noqa: E731
print(f"tokens/s as reported by the CLI (incl. compile): {a['tokens_per_s']:,.0f} -> MFU {a['tokens_per_s'] * flops_per_token / peak:.1%}")
extra_s = a["train_wall_s"] - s["train_wall_s"]  # compile and data setup cancel out
if extra_s <= 0:
    print(f"steady tokens/s: unusable, the {steps}-step run took no longer than the {short}-step one")
else:
    steady = (tokens(a) - tokens(s)) / extra_s
    print(f"steady tokens/s ({steps} - {short} steps): {steady:,.0f} -> MFU {steady * flops_per_token / peak:.1%} (target >= 45%)")
if b is None:
    print("resume: the resumed run wrote no result.json (see its output above)")
else:
    print(f"final loss uninterrupted {a['final_loss']!r}, interrupted + resumed {b['final_loss']!r}, "
          f"|diff| {abs(a['final_loss'] - b['final_loss']):.3g}")
EOF
section "4c. the same GPT at 2:4 through the CLI: masked dense vs --semi-structured (swap after the last mask update)"
for mode in dense semi; do
    flag=""; [ "$mode" = semi ] && flag="--semi-structured"
    timeout 200 $TRAIN --pattern 2:4 --steps "$STEPS" --eval-every "$STEPS" --ckpt-every "$STEPS" $flag --out $WORK/run-24-$mode
done
$PY -c "import json; r={k: json.load(open('$WORK/run-24-'+k+'/result.json')) for k in ('dense','semi')}; print('2:4 train wall s (whole run; kernels only in the last 25%):', {k: round(v['train_wall_s'],1) for k,v in r.items()}, 'final loss:', {k: v['final_loss'] for k,v in r.items()})" || echo "4c: a run failed (see above)"
if [ "$NGPU" -ge 2 ]; then
    section "4b. two-process DDP (nccl)"
    timeout 200 $PY -m torch.distributed.run --standalone --nproc_per_node=2 -m sparsescale train --model gpt \
        --params "$PARAMS" --depth "$DEPTH" --head-dim "$HEAD_DIM" --seq-len "$SEQ" --batch "$BATCH" --device "$DEVICE" \
        --corpus $WORK/corpus --steps "$SHORT" --out $WORK/run-ddp --quiet
else
    echo "two-process DDP: skipped, this machine has $NGPU GPU (needs 2)"
fi
fi
section "done"
