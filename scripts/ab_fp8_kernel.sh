#!/usr/bin/env bash
# Interleaved A/B of the FP8 kernel between this tree (B) and other kernel sources (A, a copy of
# an earlier hopper/), in one device call: build B (SASS checked), keep its installed package, run
# the FP8 tests on it (FA3_TESTS=0 skips them), put A's hopper/ in place and build it, then time
# both in alternating processes, FA3_ROUNDS rounds (default 4), with scripts/fp8_kernel_time.py.
# The device copy of the tree has no git history: export A's sources here and carry them, e.g.
#   mkdir -p .ab_a && git archive <commit> hopper | tar -x -C .ab_a   # .ab_a/ is git-ignored
#   run(command="bash scripts/ab_fp8_kernel.sh .ab_a/hopper 128:16384 128:16384:causal", carry=[".whl", ".ab_a"])
# Logs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
[ $# -ge 2 ] && [ -d "$1" ] || { echo "usage: bash scripts/ab_fp8_kernel.sh A_HOPPER_DIR CASE..."; exit 2; }
base=$1
shift
step "B: this tree"
build_checked || exit 1
pkg=$(python3 -c "import fa3, os; print(os.path.dirname(os.path.dirname(fa3.__file__)))")
rm -rf /tmp/ab_b && mkdir -p /tmp/ab_b && cp -r "$pkg/fa3" /tmp/ab_b/
if [ "${FA3_TESTS:-1}" != 0 ]; then
  step "B: FP8 tests"
  cycle_tests pytest_fp8.log tests/test_fp8.py tests/test_quantize_kernel.py
fi
step "A: the kernels of $base"
rm -rf /tmp/ab_b_src && cp -r hopper /tmp/ab_b_src && rm -rf hopper && cp -r "$base" hopper || exit 1
trap 'rm -rf hopper && cp -r /tmp/ab_b_src hopper' EXIT
fa3_build > "$OUT/build_a.log" 2>&1 || { tail -n 40 "$OUT/build_a.log"; exit 1; }
step "interleaved timing"
for round in $(seq "${FA3_ROUNDS:-4}"); do
  python3 scripts/fp8_kernel_time.py --label "A$round" --case "$@"
  PYTHONPATH=/tmp/ab_b:$PYTHONPATH python3 scripts/fp8_kernel_time.py --label "B$round" --case "$@"
done | tee "$OUT/ab_times.txt"
step "medians (TFLOP/s)"
python3 - "$OUT/ab_times.txt" <<'PY'
import statistics, sys, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, case, *_, tf, _unit = line.split()
    t[(label[0], case)].append(float(tf))
for case in dict.fromkeys(c for _, c in t):
    a, b = statistics.median(t[("A", case)]), statistics.median(t[("B", case)])
    print(f"{case:22s} A {a:7.1f}  B {b:7.1f}  B/A {b / a:.3f}")
PY
