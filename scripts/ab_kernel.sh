#!/usr/bin/env bash
# Interleaved A/B of fa3 kernels in one device call: this tree (B) against one or more other
# kernel sources (A1, A2, ...: copies of hopper/), timed in alternating processes with
# scripts/kernel_time.py, FA3_ROUNDS rounds (default 4), medians printed at the end.
#   B is built first (SASS checked) and tested: FA3_TESTS (default tests/test_fp8.py
#   tests/test_quantize_kernel.py; FA3_TESTS=0 skips); each A's hopper/ is then put in place and
#   built in turn (incremental: only what its sources change recompiles).
#   FA3_MODE: what is timed (kernel_time.py --mode: fp8, the default, or bwd).
# The device copy of the tree has no git history: export the A sources here and carry them, e.g.
#   mkdir -p .ab_a && git archive <commit> hopper | tar -x -C .ab_a   # .ab_a/ is git-ignored
#   run(command="bash scripts/ab_kernel.sh .ab_a/hopper -- 128:16384 128:16384:causal", carry=[".whl", ".ab_a"])
#   run(command="FA3_MODE=bwd FA3_TESTS=tests/test_bwd.py bash scripts/ab_kernel.sh .ab_a/x/hopper .ab_a/y/hopper -- 64:16384", ...)
# Logs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
shift || true
{ [ ${#variants[@]} -ge 1 ] && [ $# -ge 1 ]; } || { echo "usage: bash scripts/ab_kernel.sh A_HOPPER_DIR... -- CASE..."; exit 2; }
for dir in "${variants[@]}"; do [ -d "$dir" ] || { echo "no such directory: $dir"; exit 2; }; done
tests=${FA3_TESTS:-tests/test_fp8.py tests/test_quantize_kernel.py}

# Keeps the installed fa3 package of the build just made under /tmp/ab/<label>.
keep_build() {
  local pkg
  pkg=$(python3 -c "import fa3, os; print(os.path.dirname(os.path.dirname(fa3.__file__)))")
  rm -rf "/tmp/ab/$1" && mkdir -p "/tmp/ab/$1" && cp -r "$pkg/fa3" "/tmp/ab/$1/"
}

step "B: this tree"
build_checked || exit 1
keep_build B
if [ "$tests" != 0 ]; then
  step "B: tests ($tests)"
  # shellcheck disable=SC2086 # a list of test files
  cycle_tests pytest_b.log $tests
fi
rm -rf /tmp/ab_tree_src && cp -r hopper /tmp/ab_tree_src
trap 'rm -rf hopper && cp -r /tmp/ab_tree_src hopper' EXIT
labels=(B)
for i in "${!variants[@]}"; do
  label="A$((i + 1))"
  step "$label: the kernels of ${variants[$i]}"
  rm -rf hopper && cp -r "${variants[$i]}" hopper || exit 1
  fa3_build > "$OUT/build_$label.log" 2>&1 || { tail -n 40 "$OUT/build_$label.log"; exit 1; }
  keep_build "$label"
  labels+=("$label")
done

step "interleaved timing (${FA3_MODE:-fp8})"
for round in $(seq "${FA3_ROUNDS:-4}"); do
  for label in "${labels[@]}"; do
    PYTHONPATH=/tmp/ab/$label:$PYTHONPATH python3 scripts/kernel_time.py --mode "${FA3_MODE:-fp8}" \
      --label "$label" --case "$@"
  done
done | tee "$OUT/ab_times.txt"
step "medians (TFLOP/s; ratio to B)"
python3 - "$OUT/ab_times.txt" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, case, *_, tf, _unit = line.split()
    t[(label, case)].append(float(tf))
labels = list(dict.fromkeys(label for label, _ in t))
for case in dict.fromkeys(c for _, c in t):
    med = {label: statistics.median(t[(label, case)]) for label in labels}
    print(f"{case:22s} " + "  ".join(f"{label} {med[label]:7.1f} ({med[label] / med['B']:.3f})" for label in labels))
PY
