#!/usr/bin/env bash
# Mutation score of the law and schedule code, per module.
#
# Uses mutmut 2.x: its --runner runs each mutant's tests as a separate command,
# so mutmut lives in a venv of its own and the tests run with the project's
# Python (mutmut 3 runs pytest inside its own interpreter, which would need
# torch and the project installed next to it). Not part of CI: a full pass
# takes hours on 2 cores. One mutant at a time (mutmut 2 has no workers).
#
#   python3 -m venv /tmp/mutvenv && /tmp/mutvenv/bin/pip install "mutmut<3" whatthepatch
#   MUTMUT=/tmp/mutvenv/bin/mutmut scripts/mutation.sh MODULE [TEST...]
#   MUTMUT=... FUNCTIONS="fit_law _Problem.to_coefficients" scripts/mutation.sh laws/fit.py
#   MUTMUT=... scripts/mutation.sh            # every module of the table below
#
# MODULE is a path under src/sparsescale (a file, or laws for the whole
# package). TEST... overrides the module's tests from the table below (any
# module may be given with its tests). FUNCTIONS restricts the mutants to the
# lines of those functions (top-level names, or Class.method); the table holds
# the default restriction of some modules. Every module runs in a scratch copy
# of a committed tree (git archive $REF, default HEAD; an older REF gives the
# score before a change of tests), so a mutant never touches the work tree,
# even when interrupted. The tests are the committed ones of $REF too, unless
# TESTS_REF names another commit to take tests/ from (REF=main TESTS_REF=HEAD:
# the old code against the new tests). No bytecode is written: a mutant of the
# same length as the original, written within the second, would otherwise be
# run from the original's stale .pyc and "survive". The summary line of each
# run, `mutmut results` and the diff of every survivor go to $OUT (default
# ./mutation-results), with mutmut's cache ($OUT/<module>.cache).
#
# The tests of each mutant run in a child forked from a server that imported
# torch, numpy and pytest once (scripts/mutation_runner.py): a cold start of
# the tests costs 10 s or more of imports on a loaded machine, more than the
# targeted tests. FORK=0 runs every mutant's tests cold instead.
#
# RECHECK=<a saved .cache> starts from that run's results: mutmut keeps a
# killed mutant killed and retests the others when the tests changed (its
# cache stores a hash of tests/), so with tests only added this gives the score
# after in minutes instead of hours. The product code must be the one of the
# saved run.
set -euo pipefail

root=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
mutmut=${MUTMUT:-mutmut}
python=${PYTHON:-$root/.venv/bin/python}
out=$(realpath -m "${OUT:-$root/mutation-results}")
ref=${REF:-HEAD}
tests_ref=${TESTS_REF:-$ref}

# module (under src/sparsescale) -> the tests that are meant to kill its mutants
# (fast, targeted files first: pytest runs -x, so the first failure ends a mutant)
declare -A TESTS=(
  [laws]="tests/laws"
  [laws/forms.py]="tests/laws/test_mutation_kills.py tests/laws/test_forms.py"   # before the laws/ split
  [laws/law.py]="tests/laws/test_mutation_kills.py tests/laws/test_forms.py"
  [laws/forms]="tests/laws/test_mutation_kills.py tests/laws/test_forms.py"
  [laws/schedule.py]="tests/laws/test_mutation_kills.py tests/laws/test_forms.py"
  [laws/presets.py]="tests/laws/test_mutation_kills.py tests/laws/test_forms.py"
  [laws/uncertainty/intervals.py]="tests/laws/test_mutation_kills_planning.py tests/laws/test_mutation_kills.py tests/laws/test_intervals.py"
  [laws/fit.py]="tests/laws/test_mutation_kills_fit.py tests/laws/test_mutation_kills.py tests/laws/test_fit.py tests/laws/test_fit_paths.py"
  [laws/planning.py]="tests/laws/test_mutation_kills_planning.py tests/laws/test_mutation_kills.py tests/laws/test_planning.py"
  [laws/intervals.py]="tests/laws/test_mutation_kills_planning.py tests/laws/test_mutation_kills.py tests/laws/test_intervals.py"
  [laws/costs.py]="tests/laws/test_mutation_kills_planning.py tests/laws/test_mutation_kills.py tests/laws/test_costs.py"
  [laws/design.py]="tests/laws/test_mutation_kills_design.py tests/laws/test_design.py"
  [laws/compare.py]="tests/laws/test_mutation_kills_compare.py tests/laws/test_compare.py"
  [laws/regime.py]="tests/laws/test_mutation_kills_regime.py tests/laws/test_regime.py"
  [laws/from_dense.py]="tests/laws/test_mutation_kills_from_dense.py tests/laws/test_pretrained.py"
  [laws/uncertainty/bootstrap.py]="tests/laws/test_mutation_kills_bootstrap.py tests/laws/test_uncertainty.py tests/laws/test_fit_paths.py"
  [laws/uncertainty/calibration.py]="tests/laws/test_mutation_kills_calibration.py tests/laws/test_intervals.py"
  [laws/uncertainty/assess.py]="tests/laws/test_mutation_kills_assess.py tests/laws/test_pretrained.py"
  [laws/jsonsafe.py]="tests/laws/test_mutation_kills_jsonsafe.py tests/laws/test_forms.py"
  [laws/points.py]="tests/laws/test_mutation_kills_points.py tests/laws/test_fit.py"
  [laws/paper.py]="tests/laws/test_mutation_kills_paper.py tests/laws/test_forms.py"
  [laws/nm_patterns.py]="tests/laws/test_mutation_kills_nm_patterns.py tests/laws/test_patterns.py"
  [laws/pattern_choice.py]="tests/laws/test_mutation_kills_pattern_choice.py tests/laws/test_patterns.py"
  [sparsity/schedules.py]="tests/sparsity/test_schedules.py tests/sparsity/test_schedule_edges.py"
  [sparsity/masks.py]="tests/sparsity/test_mask_edges.py tests/sparsity/test_masks.py tests/sparsity/test_transposable.py tests/sparsity/test_never_grow.py"
  # train/run.py: only the schedule code (the lr schedule, the pruner's wiring);
  # the rest of the loop is covered by end-to-end runs too slow to repeat per mutant
  [train/run.py]="tests/train/test_lr_closed_form.py tests/train/test_schedule_wiring.py"
)
# the default FUNCTIONS of a module
declare -A FUNCS=(
  [train/run.py]="_lr_at _build"
)

if [ $# -gt 0 ]; then
  modules=("$1"); shift
  [ $# -eq 0 ] || TESTS[${modules[0]}]="$*"
else
  modules=(laws sparsity/schedules.py sparsity/masks.py train/run.py)
fi
mkdir -p "$out"

# a patch that marks the given functions' lines of a file as added: mutmut's
# --use-patch-file then mutates only those lines
function_patch() {
  "$python" - "$@" <<'EOF'
import ast, sys
path, names = sys.argv[1], set(sys.argv[2:])
lines = open(path).read().splitlines()
keep, found = set(), set()
def visit(body, prefix):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and prefix + node.name in names:
            found.add(prefix + node.name)
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            keep.update(range(start, node.end_lineno + 1))
        elif isinstance(node, ast.ClassDef):
            visit(node.body, prefix + node.name + ".")
visit(ast.parse("\n".join(lines)).body, "")
if names - found:
    sys.exit(f"no such function(s) in {path}: {' '.join(sorted(names - found))}")
old = [l for i, l in enumerate(lines, 1) if i not in keep]
print(f"--- {path}\n+++ {path}\n@@ -1,{len(old)} +1,{len(lines)} @@")
for i, l in enumerate(lines, 1):
    print(("+" if i in keep else " ") + l)
EOF
}

for module in "${modules[@]}"; do
  tests=${TESTS[$module]:-}
  if [ -z "$tests" ]; then
    stem=$(basename "$module" .py)
    tests="tests/$(dirname "$module")/test_$stem.py"
  fi
  functions=${FUNCTIONS-${FUNCS[$module]:-}}
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  git -C "$root" archive "$ref" | tar -x -C "$scratch"
  if [ "$tests_ref" != "$ref" ]; then
    rm -rf "$scratch/tests" && git -C "$root" archive "$tests_ref" tests | tar -x -C "$scratch"
  fi
  path="src/sparsescale/$module"
  [ -e "$scratch/$path" ] || { echo "no $path at $ref" >&2; exit 2; }
  present=$(cd "$scratch" && for t in $tests; do if [ -e "$t" ]; then echo "$t"; fi; done | tr '\n' ' ')
  pytest_args="-x -q -p no:cacheprovider $present"
  sock="$scratch/.runner.sock"
  if [ "${FORK:-1}" = 1 ]; then
    # a server that imports torch once and forks a child per mutant (scripts/mutation_runner.py)
    (cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$scratch/src" RAY_USAGE_STATS_ENABLED=0 \
      exec "$python" "$root/scripts/mutation_runner.py" serve "$sock" $pytest_args > "$out/server.log" 2>&1) &
    for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.2; done
    [ -S "$sock" ] || { echo "the test server did not start (see $out/server.log)" >&2; exit 2; }
    trap '"$python" -S "$root/scripts/mutation_runner.py" stop "$sock" 2>/dev/null; rm -rf "$scratch"' EXIT
    cat > "$scratch/runner.sh" <<EOF
#!/usr/bin/env bash
exec "$python" -S "$root/scripts/mutation_runner.py" ask "$sock"
EOF
  else
    cat > "$scratch/runner.sh" <<EOF
#!/usr/bin/env bash
cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$scratch/src" RAY_USAGE_STATS_ENABLED=0 \\
  exec "$python" -m pytest $pytest_args
EOF
  fi
  chmod +x "$scratch/runner.sh"
  extra=()
  if [ -n "$functions" ]; then
    (cd "$scratch" && function_patch "$path" $functions > only.patch)
    extra=(--use-patch-file only.patch)
  fi
  name=${module//\//_}
  echo "== $module at $ref (tests: $present${functions:+; functions: $functions})"
  run=(run --paths-to-mutate "$path" --tests-dir tests --runner "$scratch/runner.sh" --simple-output "${extra[@]}")
  if [ -n "${RECHECK:-}" ]; then cp "$RECHECK" "$scratch/.mutmut-cache"; fi
  (cd "$scratch" && PYTHONDONTWRITEBYTECODE=1 "$mutmut" "${run[@]}" > "$out/$name.log" 2>&1) || true   # exit status: a bit per kind of survivor
  # the last progress line: done/total, killed, timed out, suspicious, survived, skipped
  tr '\r' '\n' < "$out/$name.log" | grep -a '/' | tail -1 > "$out/$name.summary" || true
  # and the totals over the whole cache (a recheck's log only covers the survivors)
  (cd "$scratch" && for kind in killed survived timeout suspicious; do
     printf '%s %s  ' "$kind" "$("$mutmut" result-ids "$kind" 2>/dev/null | wc -w)"; done; echo) | tee -a "$out/$name.summary"
  (cd "$scratch" && "$mutmut" results > "$out/$name.results" 2>&1 || true
   for id in $("$mutmut" result-ids survived 2>/dev/null); do "$mutmut" show "$id"; done > "$out/$name.survivors" 2>&1 || true)
  cp "$scratch/.mutmut-cache" "$out/$name.cache"
  if [ "${FORK:-1}" = 1 ]; then "$python" -S "$root/scripts/mutation_runner.py" stop "$sock" 2>/dev/null || true; fi
  rm -rf "$scratch"
  trap - EXIT
done
