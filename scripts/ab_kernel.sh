#!/usr/bin/env bash
# Interleaved A/B of fa3 kernels in one device call: this tree (B) against one or more other
# sources (A1, A2, ...: directories holding a hopper/ and, where the Python side differs too,
# a python/ to put in place of the tree's; or holding fa3/, an installed package built
# elsewhere for the device's Python, used as it is), timed in alternating processes with
# scripts/kernel_time.py, FA3_ROUNDS rounds (default 4), medians printed at the end.
#   B is built first (SASS checked) and tested: FA3_TESTS (default tests/test_fp8.py
#   tests/test_quantize_kernel.py; FA3_TESTS=0 skips); each A's sources are then put in place
#   and built in turn (incremental: only what they change recompiles).
#   FA3_MODE: what is timed (kernel_time.py --mode: fp8, the default, fp8-q-residual, bwd or fwd).
# The device copy of the tree has no git history: export the A sources here and carry them, e.g.
#   mkdir -p .ab_a/old && git archive <commit> hopper python | tar -x -C .ab_a/old   # .ab_a/ is git-ignored
#   run(command="bash scripts/ab_kernel.sh .ab_a/old -- 128:16384 128:16384:causal", carry=[".whl", ".ab_a"])
#   run(command="FA3_MODE=bwd FA3_TESTS=tests/test_bwd.py bash scripts/ab_kernel.sh .ab_a/x .ab_a/y -- 64:16384", ...)
# A prebuilt package saves a build on the device (about 100-140 s each), for B too
# (FA3_B_PACKAGE=<dir holding fa3/>: no build, no SASS check there; check_sass.py it where it was
# built), e.g. one built here:
#   git archive <commit> | tar -x -C /tmp/src && cd /tmp/src && \
#     python3.12 -m pip install --no-build-isolation --no-deps --target <repo>/.ab_a/old_pkg .
# Logs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
shift || true
{ [ ${#variants[@]} -ge 1 ] && [ $# -ge 1 ]; } || { echo "usage: bash scripts/ab_kernel.sh A_DIR... -- CASE..."; exit 2; }
for dir in "${variants[@]}"; do
  [ -d "$dir/hopper" ] || [ -d "$dir/fa3" ] || { echo "neither hopper/ nor fa3/ in $dir"; exit 2; }
done
tests=${FA3_TESTS:-tests/test_fp8.py tests/test_quantize_kernel.py}

# Keeps the fa3 package found in directory $2 (default: where the build just made installed it)
# under /tmp/ab/<label $1>, the PYTHONPATH entry that label is timed with.
keep_package() {
  local from=${2:-$(python3 -c "import fa3, os; print(os.path.dirname(os.path.dirname(fa3.__file__)))")}
  rm -rf "/tmp/ab/$1" && mkdir -p "/tmp/ab/$1" && cp -r "$from/fa3" "/tmp/ab/$1/"
}

if [ -n "${FA3_B_PACKAGE:-}" ]; then
  step "B: the package in $FA3_B_PACKAGE"
  keep_package B "$FA3_B_PACKAGE" || exit 1
else
  step "B: this tree"
  build_checked || exit 1
  keep_package B
fi
if [ "$tests" != 0 ]; then
  step "B: tests ($tests)"
  # shellcheck disable=SC2086 # a list of test files
  PYTHONPATH=/tmp/ab/B${PYTHONPATH:+:$PYTHONPATH} cycle_tests pytest_b.log $tests
fi
rm -rf /tmp/ab_tree_src && mkdir -p /tmp/ab_tree_src && cp -r hopper python /tmp/ab_tree_src/
trap 'rm -rf hopper python && cp -r /tmp/ab_tree_src/hopper /tmp/ab_tree_src/python .' EXIT
labels=(B)
for i in "${!variants[@]}"; do
  label="A$((i + 1))"
  if [ -d "${variants[$i]}/fa3" ]; then
    step "$label: the package in ${variants[$i]}"
    keep_package "$label" "${variants[$i]}" || exit 1
    labels+=("$label")
    continue
  fi
  step "$label: the kernels of ${variants[$i]}"
  for src in hopper python; do
    from="${variants[$i]}/$src"
    [ -d "$from" ] || from="/tmp/ab_tree_src/$src"
    rm -rf "$src" && cp -r "$from" "$src" || exit 1
  done
  fa3_build > "$OUT/build_$label.log" 2>&1 || { tail -n 40 "$OUT/build_$label.log"; exit 1; }
  keep_package "$label"
  labels+=("$label")
done

step "interleaved timing (${FA3_MODE:-fp8})"
for round in $(seq "${FA3_ROUNDS:-4}"); do
  for label in "${labels[@]}"; do
    PYTHONPATH=/tmp/ab/$label${PYTHONPATH:+:$PYTHONPATH} python3 scripts/kernel_time.py --mode "${FA3_MODE:-fp8}" \
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
