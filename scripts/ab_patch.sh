#!/usr/bin/env bash
# A/B of a kernel patch in one device call, for when device time is short: build the tree as it
# is (A) and benchmark it; apply the patch (B), rebuild (incremental), check its SASS, run the
# forward GPU tests on it and benchmark it the same way. Each benchmark times fa3 and cuDNN in
# interleaved rounds; compare the fa3/cuDNN ratios of A and B, not raw TFLOP/s across the two.
# The patch is taken back out at the end; the full device cycle (gpu_cycle.sh) is still due
# before a patch lands.
#
#   bash scripts/ab_patch.sh 0001-x.patch --hdim 64 --seqlen 2048 16384 --causal false
#
# The patch file must be inside the tree (an untracked file travels to the device with it).
#
# Benchmark options after the patch are passed to python -m fa3.bench; FA3_ROUNDS (default 5)
# sets its --rounds, FA3_IMPLS (default "fa3 sdpa-cudnn") its --impl, FA3_TESTS (default
# tests/test_fwd.py) the tests run on B, FA3_SASS_CHECK=0 lets B run on when its SASS check fails
# (to measure what a spill costs); for an FP8 patch:
#   FA3_IMPLS="fa3-fp8 sdpa-cudnn" FA3_COMPARE=fa3-fp8 FA3_TESTS=tests/test_fp8.py \
#     bash scripts/ab_patch.sh ...
# Writes ab.log, build_{a,b}.log, pytest_b.log, bench_{a,b}.json to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/.fa3_out}"
mkdir -p "$OUT"
[ $# -ge 1 ] && [ -f "$1" ] || { echo "usage: bash scripts/ab_patch.sh PATCH [fa3.bench options]"; exit 2; }
patch=$1
shift
exec > >(tee "$OUT/ab.log") 2>&1
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
# git apply also works outside a repository; patch(1) where there is no git.
apply_patch() {  # check | apply | revert
  if command -v git >/dev/null 2>&1; then
    case $1 in check) git apply --check "$patch" ;; apply) git apply "$patch" ;; revert) git apply -R "$patch" ;; esac
  else
    case $1 in check) patch -p1 -s --dry-run < "$patch" ;; apply) patch -p1 -s < "$patch" ;; revert) patch -p1 -s -R < "$patch" ;; esac
  fi
}
apply_patch check || exit 1
bench() {
  # shellcheck disable=SC2086 # FA3_IMPLS is a list of words
  python3 -m fa3.bench --impl ${FA3_IMPLS:-fa3 sdpa-cudnn} --rounds "${FA3_ROUNDS:-5}" --no-progress "$@"
}

echo "=== A: the tree as it is ==="
fa3_build > "$OUT/build_a.log" 2>&1 || { tail -n 40 "$OUT/build_a.log"; exit 1; }
bench --json "$OUT/bench_a.json" "$@" || exit 1

echo "=== B: with $patch ==="
apply_patch apply || exit 1
trap 'apply_patch revert' EXIT
fa3_build > "$OUT/build_b.log" 2>&1 || { tail -n 40 "$OUT/build_b.log"; exit 1; }
python3 scripts/check_sass.py "$(fa3_so)" || [ "${FA3_SASS_CHECK:-1}" = 0 ] || exit 1
# shellcheck disable=SC2086
python3 -m pytest -q ${FA3_TESTS:-tests/test_fwd.py} > "$OUT/pytest_b.log" 2>&1
rc=$?
tail -n 3 "$OUT/pytest_b.log"
[ "$rc" -eq 0 ] || exit 1
bench --json "$OUT/bench_b.json" "$@" || exit 1
python3 -m fa3.bench --compare "$OUT/bench_a.json" "$OUT/bench_b.json" --compare-impl "${FA3_COMPARE:-fa3}"
