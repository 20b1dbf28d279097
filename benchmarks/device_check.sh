#!/usr/bin/env bash
# The GPU checks in one run: within 8 minutes on one H100 or H200, no network, every figure
# printed and written under $OUT (device_check.log, semi_bench.json, speedups.json,
# optimal.json, train.json):
#
#   1. semi-structured parity tests (tests/kernels on CUDA: the 2:4 and 2:4T swaps equal masked
#      dense up to bf16 rounding);
#   2. benchmarks/semi_structured_bench.py: 2:4 FFN forward+backward at GPT-2 / ViT-L MLP shapes,
#      dense against plain 2:4 (forward sparse) and 2:4T (forward and input gradient sparse)
#      (target >= 1.2x with 2:4T), and a whole GPT training step, masked dense against swapped
#      2:4 and 2:4T linears (target >= 1.06x);
#   3. `sparsescale train --device cuda --compile` on the ~100M GPT (12 x 768, context 1024, bf16):
#      MFU from result.json's steady-state figures when it has them, else from the wall times of
#      two run lengths (target >= 45%); the final loss of a run SIGTERMed at a checkpoint and
#      resumed equal to the uninterrupted run's; a 2:4T run with --semi-structured through the
#      CLI (masks final at 75% of training, then forward and input gradient on 2:4 kernels);
#   4. `sparsescale bench-kernels --device cuda` (unstructured, 2:4, 2:4T) to speedups.json, and
#      S_opt from `optimal --flops measured` with it beside the sparse- and dense-FLOPs answers.
# Sections run in this order; one that would start past BUDGET_S is skipped with a line.
#
# The device image has torch but maybe not pydantic/typer/rich. Prepare wheels HERE, on a
# machine with PyPI, once per session (they land in .whl/, which .gitignore ignores):
#     bash benchmarks/device_check.sh --prepare
# then on the device, with the wheels carried:
#     run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=600)
# CPU dry run (every step at tiny sizes, CUDA-only steps skipped with a line; the test suite
# runs it): bash benchmarks/device_check.sh --cpu-dry-run
# Knobs (environment): SECTIONS (default 1234), STEPS (100), SHORT (30), BATCH (32),
# OPT (adafactor), BUDGET_S (470: a section that would start later is skipped, with a line),
# PEAK_FLOPS (default from the GPU's name: H100/H200 989e12 bf16 dense, A100 312e12).
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

DRY=0
if [ "${1:-}" = "--cpu-dry-run" ]; then
    # The plumbing on a CPU in about a minute: tiny model, few steps, no compile; no figure
    # from it is worth reading.
    DRY=1
    : "${DEVICE:=cpu}" "${PARAMS:=20k}" "${DEPTH:=2}" "${HEAD_DIM:=16}" "${SEQ:=64}" "${BATCH:=4}"
    : "${STEPS:=40}" "${SHORT:=8}" "${COMPILE:=--no-compile}" "${BENCH_SHAPES:=32x64x128}" "${CORPUS_MB:=1}"
    : "${PY:=python3}" "${EVAL_TOKENS:=1024}" "${PAIRS:=1e7 1e18}" "${BUDGET_S:=3600}"
    : "${BENCH_EXTRA:=--sparsities 0.5 --repeats 1}"
fi

START=$(date +%s)
OUT=${OUT:-/tmp/device-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
STEPS=${STEPS:-100}; SHORT=${SHORT:-30}; BATCH=${BATCH:-32}; OPT=${OPT:-adafactor}; PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}; PARAMS=${PARAMS:-84934656}; DEPTH=${DEPTH:-12}; HEAD_DIM=${HEAD_DIM:-64}; SEQ=${SEQ:-1024}
COMPILE=${COMPILE:---compile}; CORPUS_MB=${CORPUS_MB:-40}; SECTIONS=${SECTIONS:-1234}; BUDGET_S=${BUDGET_S:-470}
EVAL_TOKENS=${EVAL_TOKENS:-65536}; PAIRS=${PAIRS:-1e7 1e18,1e8 1e20}
want() { case "$SECTIONS" in *"$1"*) return 0 ;; *) return 1 ;; esac; }
# skip a section that could not finish inside the budget (it needs about $1 seconds)
fits() {
    local left=$((BUDGET_S - $(date +%s) + START))
    if [ "$left" -lt "$1" ]; then echo "skipped: ${left}s left of BUDGET_S=${BUDGET_S}, this needs about $1s"; return 1; fi
}
# a command's time limit: its own, or what is left of BUDGET_S if less (at least 10 s)
cap() {
    local left=$((BUDGET_S - $(date +%s) + START))
    if [ "$left" -lt "$1" ]; then echo $((left > 10 ? left : 10)); else echo "$1"; fi
}
BENCH_SHAPES_FLAG=${BENCH_SHAPES:+--shapes $BENCH_SHAPES}
WORK=${WORK:-/tmp/sparsescale-device-check}  # scratch: corpus, runs, token cache
mkdir -p "$WORK"
export WORK OUT PYTHONUNBUFFERED=1 SPARSESCALE_CACHE=$WORK/cache
# the wheels are for the device image's Python 3.12; elsewhere the environment's own packages
if ls .whl/*.whl >/dev/null 2>&1 && $PY -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD/src || { echo "wheel install failed"; exit 1; }
else
    export PYTHONPATH=$PWD/src
fi
SS="$PY -m sparsescale"
section() { echo; echo "=================== $* ($(date +%T), $(( $(date +%s) - START ))s in)"; }
cuda_only() { if [ "$DEVICE" != cuda ]; then echo "skipped: CUDA only ($1; this is a run on $DEVICE)"; return 1; fi; }

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
if cuda_only "the kernels' parity with masked dense" && fits 60; then
    timeout $(cap 90) $PY -m pytest -q -p no:cacheprovider tests/kernels/test_semi_structured.py -rs 2>&1 | tail -8
fi
fi

if want 2; then
section "2. 2:4 kernels against dense (FFN fwd+bwd: 2:4 and 2:4T; whole GPT step)"
if fits 60; then
    timeout $(cap 150) $PY benchmarks/semi_structured_bench.py --steps 20 --json "$OUT/semi_bench.json"
fi
fi

if want 3; then
section "3. sparsescale train --device $DEVICE $COMPILE, the ~100M GPT (bf16 on CUDA)"
if fits 200; then
rm -rf "$WORK"/corpus "$WORK"/run-*  # a warm machine keeps them: no stale resumes
mkdir -p "$WORK/corpus"
$PY - "$CORPUS_MB" <<'EOF'
# real text for a single pass, from no network: this Python's and its packages' sources, as .txt
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
TRAIN="$SS train --model gpt --params $PARAMS --depth $DEPTH --head-dim $HEAD_DIM --seq-len $SEQ --batch $BATCH --device $DEVICE $COMPILE --optimizer $OPT --corpus $WORK/corpus --eval-tokens $EVAL_TOKENS --quiet"
timeout $(cap 200) $TRAIN --steps "$STEPS" --eval-every "$STEPS" --ckpt-every "$STEPS" --out "$WORK/run-a"
# steady-state figures: from result.json when the trainer records them, else a shorter run's wall time
if ! $PY -c "import json,sys; t=open('$WORK/run-a/result.json').read().lower(); sys.exit(0 if 'steady' in t or 'mfu' in t else 1)" 2>/dev/null; then
    echo "result.json has no steady-state figures: a ${SHORT}-step run gives them from the wall-time difference"
    fits 60 && timeout $(cap 150) $TRAIN --steps "$SHORT" --eval-every "$SHORT" --ckpt-every "$SHORT" --out "$WORK/run-short"
fi
# the same run, stopped by SIGTERM once its first checkpoint exists, then resumed by the same command
if fits 120; then
    B="$TRAIN --steps $STEPS --eval-every $STEPS --ckpt-every $SHORT --out $WORK/run-b"
    $B & PID=$!
    for _ in $(seq 1 1500); do [ -f "$WORK/run-b/checkpoint.pt" ] && break; sleep 0.1; done
    kill -TERM $PID 2>/dev/null; wait $PID; echo "interrupted run: exit status $? (143 = stopped by SIGTERM; 0 = it had finished first)"
    timeout $(cap 200) $B
fi
# 2:4T through the CLI with --semi-structured: refused with one line where the kernels cannot run
if fits 100; then
    timeout $(cap 200) $TRAIN --pattern 2:4T --semi-structured --steps "$STEPS" --eval-every "$STEPS" --ckpt-every "$STEPS" \
        --out "$WORK/run-24T-semi"; echo "2:4T --semi-structured: exit status $?"
fi
$PY - "$SHORT" "$STEPS" "$DEVICE" <<'EOF'
import json, os, subprocess, sys
short, steps, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
work, out = os.environ["WORK"], os.environ["OUT"]


def load(name):
    try:
        return json.load(open(f"{work}/run-{name}/result.json"))
    except (OSError, ValueError):
        return None


def peak_flops():
    if "PEAK_FLOPS" in os.environ:
        return float(os.environ["PEAK_FLOPS"])
    if device != "cuda":
        return None
    name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                          text=True).stdout
    return 989e12 if ("H100" in name or "H200" in name) else 312e12 if "A100" in name else None


def steady_figures(r, prefix=""):
    """Numbers the trainer may record for its steady state (tokens/s past the
    first steps, MFU), at any depth of result.json, by dotted path."""
    found = {}
    for k, v in r.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            found.update(steady_figures(v, path + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and ("steady" in path.lower() or "mfu" in path.lower()):
            found[path] = v
    return found


a, s, b, t = load("a"), load("short"), load("b"), load("24T-semi")
summary = {"steps": steps, "device": device}
if a is None:
    print("run-a wrote no result.json (see its output above)")
else:
    m = a["model_config"]
    linear = m["depth"] * (4 * m["width"] ** 2 + 2 * m["width"] * m["mlp_hidden"]) + m["vocab_size"] * m["width"]
    flops_per_token = 6 * linear + 12 * m["depth"] * a["seq_len"] * m["width"]  # PaLM accounting, as train_bench.py
    peak = peak_flops()
    mfu = (lambda tps: tps * flops_per_token / peak) if peak else (lambda tps: None)
    summary.update(flops_per_token=flops_per_token, peak_flops=peak, tokens_per_s_reported=a["tokens_per_s"],
                   mfu_reported=mfu(a["tokens_per_s"]), result_json_steady=steady_figures(a),
                   final_loss_a=a["final_loss"])
    print(f"tokens/s as reported (whole run incl. compile): {a['tokens_per_s']:,.0f}"
          + (f" -> MFU {summary['mfu_reported']:.1%}" if peak else " (no peak FLOPs known for this device: no MFU)"))
    if summary["result_json_steady"]:
        print(f"result.json steady-state figures: {summary['result_json_steady']} (target MFU >= 45%)")
    elif s is not None:
        tokens = lambda r: r["steps"] * r["batch"] * r["seq_len"]  # noqa: E731
        extra_s = a["train_wall_s"] - s["train_wall_s"]  # compile and data setup cancel out
        if extra_s > 0:
            steady = (tokens(a) - tokens(s)) / extra_s
            summary.update(tokens_per_s_steady_from_wall=steady, mfu_steady_from_wall=mfu(steady))
            print(f"steady tokens/s from wall times ({steps} - {short} steps): {steady:,.0f}"
                  + (f" -> MFU {mfu(steady):.1%} (target >= 45%)" if peak else ""))
        else:
            print(f"steady tokens/s: unusable, the {steps}-step run took no longer than the {short}-step one")
if b is None:
    print("resume: the resumed run wrote no result.json (see its output above)")
elif a is not None:
    summary.update(final_loss_resumed=b["final_loss"], resume_equal=a["final_loss"] == b["final_loss"])
    print(f"final loss uninterrupted {a['final_loss']!r}, interrupted + resumed {b['final_loss']!r}: "
          + ("equal" if summary["resume_equal"] else f"|diff| {abs(a['final_loss'] - b['final_loss']):.3g}"))
if t is not None:
    summary.update(semi_24T={k: t.get(k) for k in ("final_loss", "train_wall_s", "tokens_per_s", "measured_sparsity")})
    print(f"2:4T --semi-structured: {summary['semi_24T']}")
json.dump(summary, open(f"{out}/train.json", "w"), indent=1)
print(f"-> {out}/train.json")
EOF
if [ "$NGPU" -ge 2 ] && fits 120; then
    section "3b. two-process DDP (nccl)"
    timeout $(cap 200) $PY -m torch.distributed.run --standalone --nproc_per_node=2 -m sparsescale train --model gpt \
        --params "$PARAMS" --depth "$DEPTH" --head-dim "$HEAD_DIM" --seq-len "$SEQ" --batch "$BATCH" --device "$DEVICE" \
        --corpus "$WORK/corpus" --steps "$SHORT" --out "$WORK/run-ddp" --quiet
else
    echo "two-process DDP: skipped, this machine has $NGPU GPU (needs 2) or no time is left"
fi
fi
fi
if want 4; then
section "4. bench-kernels on the device, and S_opt from it"
if fits 60; then
    timeout $(cap 120) $SS bench-kernels --device "$DEVICE" --out "$OUT/speedups.json" --patterns unstructured,2:4,2:4T \
        $BENCH_SHAPES_FLAG ${BENCH_EXTRA:---repeats 3 --sparsities 0.5,0.75,0.9}
    echo "[" > "$WORK/optimal.jsonl"
    IFS=, read -ra NCS <<< "$PAIRS"
    for NC in "${NCS[@]}"; do
        set -- $NC
        for FL in sparse dense measured; do
            extra=""; [ "$FL" = measured ] && extra="--speedups $OUT/speedups.json"
            if $SS optimal --law vit-jft --params "$1" --compute "$2" --flops $FL $extra --json > "$WORK/opt.json" 2> "$WORK/opt.err"; then
                $PY - "$1" "$2" "$FL" "$WORK/opt.json" >> "$WORK/optimal.jsonl" <<'EOF'
import json, sys
n, c, flops, path = sys.argv[1:]
d = json.load(open(path))
print(f"N={n} C={c} flops={flops}: S_opt={d['sparsity']:.4f} loss={d['loss']:.5f}", file=sys.stderr)
print(json.dumps({"n_nonzero": float(n), "compute": float(c), "flops": flops, "s_opt": d["sparsity"], "loss": d["loss"]}) + ",")
EOF
            else
                echo "N=$1 C=$2 flops=$FL: failed: $(head -1 "$WORK/opt.err")"
            fi
        done
    done
    $PY -c "import json,sys; t=open(sys.argv[1]).read().rstrip().rstrip(',') + ']'; json.dump(json.loads(t), open(sys.argv[2], 'w'), indent=1)" \
        "$WORK/optimal.jsonl" "$OUT/optimal.json" && echo "-> $OUT/optimal.json"
    $PY -c "import json; d=json.load(open('$OUT/speedups.json')); print('speedups (dense step / sparse step):', json.dumps(d.get('speedups')), '; skipped:', json.dumps(d.get('skipped', {})))"
fi
fi

section "done"
