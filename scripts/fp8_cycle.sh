#!/usr/bin/env bash
# The FP8 device cycle, one command (issue 5 work in progress): build fa3 with all cores, check
# the SASS, run every test (the FP8 and quantization-kernel GPU tests included), and time the
# FP8 kernel alone and end to end against fa3 bf16 and cuDNN bf16 (16k tokens, hidden 2048).
# Logs and JSON to $OUT (the device tool's output folder) or ./.fa3_out.
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
    --seqlen ${FA3_SEQLENS:-2048 16384} --causal ${FA3_CAUSAL:-both} --json "$OUT/bench_fp8.json" || status=1
fi
step "summary"
echo "fp8_cycle exit status: $status"
exit $status
