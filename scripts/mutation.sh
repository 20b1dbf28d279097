#!/usr/bin/env bash
# Mutation score of the law and schedule code, per module.
#
# Uses mutmut 2.x: its --runner runs each mutant's tests as a separate command,
# so mutmut lives in a venv of its own and the tests run with the project's
# Python (mutmut 3 runs pytest inside its own interpreter, which would need
# torch and the project installed next to it). Not part of CI: a full pass
# takes hours on 2 cores.
#
#   python3 -m venv /tmp/mutvenv && /tmp/mutvenv/bin/pip install "mutmut<3" whatthepatch
#   MUTMUT=/tmp/mutvenv/bin/mutmut scripts/mutation.sh [MODULE...]
#
# MODULE is one of the keys below (default: all). Every module runs in a
# scratch copy of a committed tree (git archive $REF, default HEAD; an older
# REF gives the score before a change of tests), so a mutant never touches
# the work tree, even when interrupted. No bytecode is written: a mutant of
# the same length as the original, written within the second, would
# otherwise be run from the original's stale .pyc and "survive". The summary line of each run
# and its surviving mutants (diffs) go to $OUT (default ./mutation-results).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mutmut=${MUTMUT:-mutmut}
python=${PYTHON:-$root/.venv/bin/python}
out=$(realpath -m "${OUT:-$root/mutation-results}")
ref=${REF:-HEAD}

# module (under src/sparsescale) -> the tests that are meant to kill its mutants
declare -A TESTS=(
  [laws]="tests/laws"
  [sparsity/schedules.py]="tests/sparsity/test_schedules.py tests/sparsity/test_schedule_edges.py"
  [sparsity/masks.py]="tests/sparsity/test_masks.py tests/sparsity/test_transposable.py tests/sparsity/test_never_grow.py"
  # train/run.py: only the schedule code (the lr schedule, the pruner's wiring);
  # the rest of the loop is covered by end-to-end runs too slow to repeat per mutant
  [train/run.py]="tests/train/test_schedule_wiring.py"
)
# for train/run.py, the functions whose lines are mutated
RUN_FUNCTIONS="_lr_at _build"

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(laws sparsity/schedules.py sparsity/masks.py train/run.py)
mkdir -p "$out"

# a patch that marks the given functions' lines of a file as added: mutmut's
# --use-patch-file then mutates only those lines
function_patch() {
  "$python" - "$1" $RUN_FUNCTIONS <<'EOF'
import ast, sys
path, names = sys.argv[1], set(sys.argv[2:])
lines = open(path).read().splitlines()
keep = set()
for node in ast.parse("\n".join(lines)).body:
    if isinstance(node, ast.FunctionDef) and node.name in names:
        keep.update(range(node.lineno, node.end_lineno + 1))
old = [l for i, l in enumerate(lines, 1) if i not in keep]
print(f"--- {path}\n+++ {path}\n@@ -1,{len(old)} +1,{len(lines)} @@")
for i, l in enumerate(lines, 1):
    print(("+" if i in keep else " ") + l)
EOF
}

for module in "${modules[@]}"; do
  tests=${TESTS[$module]:?unknown module $module (one of: ${!TESTS[*]})}
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  git -C "$root" archive "$ref" | tar -x -C "$scratch"
  present=$(cd "$scratch" && for t in $tests; do if [ -e "$t" ]; then echo "$t"; fi; done | tr '\n' ' ')
  cat > "$scratch/runner.sh" <<EOF
#!/usr/bin/env bash
cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$scratch/src" RAY_USAGE_STATS_ENABLED=0 \\
  exec "$python" -m pytest -x -q -p no:cacheprovider $present
EOF
  chmod +x "$scratch/runner.sh"
  path="src/sparsescale/$module"
  extra=()
  if [ "$module" = train/run.py ]; then
    (cd "$scratch" && function_patch "$path" > only.patch)
    extra=(--use-patch-file only.patch)
  fi
  name=${module//\//_}
  echo "== $module at $ref ($present)"
  (cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 "$mutmut" run --paths-to-mutate "$path" --tests-dir tests --runner "$scratch/runner.sh" --simple-output \
      "${extra[@]}" > "$out/$name.log" 2>&1) || true     # exit status: a bit set per kind of survivor
  # the last progress line: done/total, killed, timed out, suspicious, survived, skipped
  tr '\r' '\n' < "$out/$name.log" | grep -a '/' | tail -1 | tee "$out/$name.summary"
  (cd "$scratch" && "$mutmut" results > "$out/$name.results" 2>&1 || true
   for id in $("$mutmut" result-ids survived 2>/dev/null); do "$mutmut" show "$id"; done > "$out/$name.survivors" 2>&1 || true)
  rm -rf "$scratch"
  trap - EXIT
done
