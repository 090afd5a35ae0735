#!/usr/bin/env bash
# The FP8 device cycle, one command (issue 5 work in progress): build fa3 with all cores, check
# the SASS, run every test (the FP8 and quantization-kernel GPU tests included), and time the
# FP8 kernel alone and end to end against fa3 bf16 and cuDNN bf16 (16k tokens, hidden 2048), run
# the accuracy grid of issue 5 (seqlen 1k/4k/16k x hdim 64/128/256, outlier inputs), and check
# issue 5's bars on both. Logs and JSON to $OUT (the device tool's output folder) or ./.fa3_out.
# FA3_BENCH=0 skips the benchmark, FA3_ACCURACY=0 the accuracy grid.
#   run(command="FA3_COMMIT=<short sha> bash scripts/fp8_cycle.sh", carry=[".whl"])
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
status=0

step "build (pip install, 16 jobs)"
build_checked || status=1

step "FP8 and quantization-kernel tests"
cycle_tests pytest_fp8.log tests/test_quantize_kernel.py tests/test_fp8.py || status=1

step "all tests"
python3 -m pytest -q -ra --tb=line > "$OUT/pytest.log" 2>&1 || status=1
tail -n 8 "$OUT/pytest.log"

if [ "${FA3_BENCH:-1}" != 0 ]; then
  step "benchmark (FP8 kernel alone and end to end vs bf16)"
  python3 -m fa3.bench --no-progress --fp8 --hdim 64 128 256 \
    --seqlen ${FA3_SEQLENS:-2048 16384} --causal ${FA3_CAUSAL:-both} --json "$OUT/bench_fp8.json" \
    --plot "$OUT/bench_fp8.png" || status=1
fi
if [ "${FA3_ACCURACY:-1}" != 0 ]; then
  step "accuracy grid (issue 5: outlier inputs, non-causal)"
  python3 -m fa3.accuracy --no-progress --seqlen 1024 4096 16384 --hdim 64 128 256 \
    --json "$OUT/accuracy_fp8.json" > "$OUT/accuracy_fp8.log" 2>&1 || status=1
  tail -n 4 "$OUT/accuracy_fp8.log"
fi
if [ -f "$OUT/bench_fp8.json" ]; then
  step "issue 5's bars (informational, not part of the exit status)"
  acc=(); [ -f "$OUT/accuracy_fp8.json" ] && acc=(--accuracy "$OUT/accuracy_fp8.json")
  python3 scripts/check_bars.py --issue 5 "$OUT/bench_fp8.json" "${acc[@]}"
fi
step "summary"
echo "fp8_cycle exit status: $status"
exit $status
