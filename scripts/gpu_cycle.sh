#!/usr/bin/env bash
# The whole device cycle on a Hopper machine, one command: build fa3 with all cores, check the
# SASS, run every test (the GPU tier included), compute-sanitizer (memcheck, racecheck) on the
# smoke and attention kernels, the accuracy report and the forward benchmark. Everything printed
# goes to $OUT/cycle.log; build and test logs, JSON and PNG results to $OUT (the device tool's
# output folder: 7 files, of the 8 that come back) or ./.fa3_out.
#
# With the device tool, from the repo root (no internet there: the CUTLASS wheel travels in .whl/):
#   run(command="FA3_COMMIT=<short sha> bash scripts/gpu_cycle.sh", carry=[".whl"])
# (the sha written out: the device's copy of .git may answer `git rev-parse` with a stale HEAD).
# About 9 minutes (close to the device tool's 10-minute limit per call): build 100 s, tests 45 s,
# sanitizer 3-4 min (fp16/bf16 and FP8 cases), accuracy, sweep and ablation.
# FA3_BENCH=0 skips the benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
status=0

step "GPU"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv

step "build (pip install, 16 jobs)"
build_checked || status=1
python3 -m fa3

step "tests"
python3 -m pytest -ra -q > "$OUT/pytest.log" 2>&1
rc=$?
tail -n 15 "$OUT/pytest.log"
[ "$rc" -eq 0 ] || status=1

step "compute-sanitizer"
for tool in memcheck racecheck; do
  for prog in "-m fa3 --smoke" "scripts/sanitizer_cases.py" "scripts/sanitizer_cases.py --fp8"; do
    # shellcheck disable=SC2086 # prog is a list of words
    sanitize "$tool" $prog || status=1
  done
done

step "accuracy (GPU)"
python3 -m fa3.accuracy --no-progress --json "$OUT/accuracy.json"

if [ "${FA3_BENCH:-1}" != 0 ]; then
  step "benchmark (forward)"
  python3 -m fa3.bench --no-progress --json "$OUT/bench_fwd.json" --plot "$OUT/bench_fwd.png" || status=1
  step "issue 4's bars on that run (fa3 / cuDNN; informational, not part of the exit status)"
  python3 scripts/check_bars.py --issue 4 "$OUT/bench_fwd.json"
  step "benchmark (ablation: pingpong, intra-warpgroup overlap)"
  python3 -m fa3.bench --ablation --no-progress --json "$OUT/bench_ablation.json" || status=1
fi

step "summary"
tail -n 1 "$OUT/pytest.log"
echo "gpu_cycle exit status: $status"
exit $status
