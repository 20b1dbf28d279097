#!/usr/bin/env bash
# Regenerates every number of docs/cpu-scale-findings.md (issue 11;
# this session's outputs are in research/cpu-scale/results/)
# from fresh stores under OUT (default runs/issue11). On an idle 2-core CPU:
# about 3 min (noise floor) + 12 min (regime curves) + 10 min (design-small)
# + 5 min (recipe levers) + the demo (see its dry-run estimate).
#   bash research/cpu-scale/reproduce.sh [OUT]
set -euo pipefail
OUT=${1:-runs/issue11}
SS=.venv/bin/sparsescale
PY=.venv/bin/python
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# 1. Noise floor: eval-sample SE at 16k/65k/262k tokens, seed spread, old first-windows bias.
$PY research/cpu-scale/noise_floor.py "$OUT/noise" | tee "$OUT/noise.jsonl"

# 2. Regime: long dense curves at 2 blocks (12.5k-100k) and 1 block (25k, 100k).
for spec in regime regime-depth1 regime-lr0.08; do
  $SS sweep "research/cpu-scale/$spec.toml" --store "$OUT/$spec.sqlite" --workers 2
  $PY research/cpu-scale/curve_slopes.py "$OUT/$spec.sqlite" | tee "$OUT/$spec-slopes.txt"
done

# 3. Design on the smaller sizes only, and the decision rule of PROTOCOL.md.
$SS sweep research/cpu-scale/design-small.toml --store "$OUT/design-small.sqlite" --workers 2
$PY research/cpu-scale/design_choice.py "$OUT/design-small.sqlite" | tee "$OUT/design-choice.json"
$PY research/cpu-scale/curve_slopes.py "$OUT/design-small.sqlite" > "$OUT/design-small-slopes.txt"

# 4. Recipe levers: batch 8, rotary positions (compare with design-small's N=25k S=0 D=1.6M curve),
#    both together in separate runs, and lr 0.01 / 0.04 at the smallest and largest size.
for spec in recipe-batch8 recipe-rope; do
  $SS sweep "research/cpu-scale/$spec.toml" --store "$OUT/$spec.sqlite" --workers 1
  $PY research/cpu-scale/curve_slopes.py "$OUT/$spec.sqlite" | tee "$OUT/$spec-slopes.txt"
done
for spec in recipe-check recipe-lr0.01 recipe-lr0.04 recipe-lr0.08 recipe-lr0.16; do
  $SS sweep "research/cpu-scale/$spec.toml" --store "$OUT/$spec.sqlite" --workers 2
  $SS export "$OUT/$spec.sqlite" | tee "$OUT/$spec.csv"
done

# 5. The demo, timed end to end, and its acceptance numbers.
$SS sweep "$(
  $PY -c 'from sparsescale.recipes.demo import preset_path; print(preset_path("quick"))')" --dry-run --workers 2 \
  --store "$OUT/demo/quick.sqlite" | tail -3 | tee "$OUT/demo-dry-run.txt"
/usr/bin/time -p $SS demo --preset quick --out "$OUT/demo" --workers 2 2>&1 | tee "$OUT/demo.log"
$PY research/cpu-scale/acceptance.py "$OUT/demo/quick.sqlite" "$OUT/demo/report" | tee "$OUT/acceptance.json"

# 6. What the demo's runs determine, the written-down 10x prediction, and post-hoc refits.
$PY research/cpu-scale/predict_extrapolation.py "$OUT/demo/quick.sqlite" 200 | tee "$OUT/prediction-10x.json"
$PY research/cpu-scale/fit_variants.py "$OUT/demo/quick.sqlite" | tee "$OUT/fit-variants.json"

# 7. cpu-full's first seed.
$SS sweep research/cpu-scale/cpu-full-seed0.toml --store "$OUT/cpu-full-seed0.sqlite" --workers 2
$SS report "$OUT/cpu-full-seed0.sqlite" --out "$OUT/cpu-full-seed0-report"
$PY research/cpu-scale/acceptance.py "$OUT/cpu-full-seed0.sqlite" "$OUT/cpu-full-seed0-report" | tee "$OUT/cpu-full-seed0-acceptance.json"

# 8. (second session) The 10x extrapolation run, and the warmup and BPE levers (PROTOCOL.md sections 7-9).
$SS sweep research/cpu-scale/extrapolation-10x.toml --store "$OUT/extrapolation-10x.sqlite" --workers 1
$SS export "$OUT/extrapolation-10x.sqlite" | tee "$OUT/extrapolation-10x.csv"
for spec in regime-bpe regime-warmup; do
  $SS sweep "research/cpu-scale/$spec.toml" --store "$OUT/$spec.sqlite" --workers 2
  $PY research/cpu-scale/curve_slopes.py "$OUT/$spec.sqlite" | tee "$OUT/$spec-slopes.txt"
done
$SS sweep research/cpu-scale/design-small-bpe.toml --store "$OUT/design-small-bpe.sqlite" --workers 2
PYTHONPATH=research/cpu-scale $PY research/cpu-scale/design_choice_bpe.py "$OUT/design-small-bpe.sqlite" | tee "$OUT/design-small-bpe-choice.json"
cp "$OUT/design-small-bpe.sqlite" "$OUT/bpe-window.sqlite"   # its runs are reused, only N = 100k trains
$SS sweep research/cpu-scale/bpe-window.toml --store "$OUT/bpe-window.sqlite" --workers 2
$SS report "$OUT/bpe-window.sqlite" --sweep bpe-window --out "$OUT/bpe-window-report"
$PY research/cpu-scale/acceptance.py "$OUT/bpe-window.sqlite" "$OUT/bpe-window-report" bpe-window | tee "$OUT/bpe-window-acceptance.json"
for spec in recipe-warmup0.01 recipe-warmup0.2; do
  $SS sweep "research/cpu-scale/$spec.toml" --store "$OUT/$spec.sqlite" --workers 2
  $SS export "$OUT/$spec.sqlite" | tee "$OUT/$spec.csv"
done
$SS sweep research/cpu-scale/regime-warmup-control.toml --store "$OUT/regime-warmup-control.sqlite" --workers 1
$PY research/cpu-scale/curve_slopes.py "$OUT/regime-warmup-control.sqlite" | tee "$OUT/regime-warmup-control-slopes.txt"
# 9. The learning-rate lever under a fresh protocol (PROTOCOL.md section 11).
$SS sweep research/cpu-scale/design-lr0.08.toml --store "$OUT/design-lr0.08.sqlite" --workers 2
$SS report "$OUT/design-lr0.08.sqlite" --out "$OUT/design-lr0.08-report"
$PY research/cpu-scale/acceptance.py "$OUT/design-lr0.08.sqlite" "$OUT/design-lr0.08-report" | tee "$OUT/design-lr0.08-acceptance.json"
# 10. cpu-full, both seeds, as a user runs it.
$SS sweep cpu-full --store "$OUT/cpu-full.sqlite" --workers 2
$SS report "$OUT/cpu-full.sqlite" --out "$OUT/cpu-full-report"
$PY research/cpu-scale/acceptance.py "$OUT/cpu-full.sqlite" "$OUT/cpu-full-report" | tee "$OUT/cpu-full-acceptance.json"
# 11. (third session) Budgets past the step, PROTOCOL.md sections 13-14. The sweep ran on a lent GPU with
#     research/cpu-scale/past_step_device.sh (about 8 min on one H200); on this CPU the dry-run estimate is 4.3 h:
#     the same spec with device = "cpu" gives the same losses (fp32).
if [ "${PAST_STEP:-0}" = 1 ]; then
  sed 's/^device = "cuda"/device = "cpu"/' research/cpu-scale/past-step-gpu.toml > "$OUT/past-step-cpu.toml"
  $SS sweep "$OUT/past-step-cpu.toml" --store "$OUT/past-step.sqlite" --workers 2
  PYTHONPATH=research/cpu-scale $PY research/cpu-scale/past_step.py "$OUT/past-step.sqlite" 200 | tee "$OUT/past-step-analysis.json"
fi
# 12. The power-law-in-D check (laws/regime.py) on the paper's sweeps and on this file's stores.
$PY research/cpu-scale/regime_table.py paper:t5 paper:vit "$OUT/demo/quick.sqlite" "$OUT/cpu-full.sqlite" \
  "$OUT/design-lr0.08.sqlite" $([ "${PAST_STEP:-0}" = 1 ] && echo "$OUT/past-step.sqlite") | tee "$OUT/regime-check.json"
