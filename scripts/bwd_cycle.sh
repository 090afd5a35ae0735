#!/usr/bin/env bash
# The backward device cycle, one command (issue 6): build fa3 with all cores, check the SASS,
# run the backward GPU tests (and the forward's, which share the build), compute-sanitizer
# (memcheck, racecheck) on small backward cases, GPU time per kernel of one backward call, and
# time the backward alone against cuDNN and FlashAttention-2 (torch SDPA), 16k tokens, hidden 2048. Logs and JSON to $OUT or ./.fa3_out.
#   run(command="FA3_COMMIT=<short sha> bash scripts/bwd_cycle.sh", carry=[".whl"])
# FA3_BENCH=0 skips the benchmark; FA3_SEQLENS (default "2048 16384") sets its sequence lengths.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
cycle_log
status=0

step "build (pip install, 16 jobs)"
build_checked || status=1

step "backward tests"
cycle_tests pytest_bwd.log tests/test_bwd.py tests/test_compile.py tests/test_bench.py || status=1

step "compute-sanitizer (backward)"
for tool in memcheck racecheck; do sanitize "$tool" scripts/sanitizer_cases.py --bwd || status=1; done

step "GPU time per kernel of one backward call (16k tokens)"
for h in 128 64; do python3 scripts/attn_case.py --bwd --kernels --hdim "$h" --seqlen 16384 || status=1; done
echo "deterministic mode, head dim 128:"
python3 scripts/attn_case.py --bwd --kernels --deterministic --hdim 128 --seqlen 16384 || status=1

if [ "${FA3_BENCH:-1}" != 0 ]; then
  step "benchmark (backward alone)"
  python3 -m fa3.bench --bwd --no-progress --hdim 64 128 --seqlen ${FA3_SEQLENS:-2048 16384} \
    --impl fa3 sdpa-cudnn sdpa-flash --json "$OUT/bench_bwd.json" --plot "$OUT/bench_bwd.png" || status=1
fi
step "summary"
echo "bwd_cycle exit status: $status"
exit $status
