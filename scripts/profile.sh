#!/usr/bin/env bash
# Nsight Compute profile of one fa3 forward or backward launch (the third) on the H100: speed of light,
# warp stall reasons, and per-SASS-instruction stall samples with their source lines, so time
# inside the kernel can be placed. Builds fa3 first if it is not importable. Writes to $OUT:
#   profile_<tag>.txt   the details page (throughputs, stall breakdown)
#   profile_<tag>.csv   the source page, one row per SASS instruction (scripts/ncu_stalls.py
#                       summarizes it: python3 scripts/ncu_stalls.py profile_<tag>.csv)
#
#   bash scripts/profile.sh --hdim 128 --seqlen 2048 [--causal] [--fp8 | --bwd]
# (the case: scripts/attn_case.py; with --bwd the backward's main kernel is profiled)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/.fa3_out}"
mkdir -p "$OUT"
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh || exit 1
if ! python3 -c "import fa3._C" 2>/dev/null; then
  fa3_build > "$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log"; exit 1; }
fi
tag=$(echo "$*" | tr -c 'a-zA-Z0-9\n' '_' | tr -s '_' | sed 's/^_//;s/_$//')
rep=/tmp/profile_$tag
kernel=flash_fwd_kernel
case " $* " in *" --bwd "*) kernel=flash_bwd_kernel ;; esac
ncu --clock-control none -k regex:$kernel --launch-skip 2 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section WarpStateStats --section SourceCounters --section LaunchStats --import-source yes \
  -f -o "$rep" python3 scripts/attn_case.py "$@" > "$OUT/ncu_$tag.log" 2>&1 || { tail -n 30 "$OUT/ncu_$tag.log"; exit 1; }
ncu -i "$rep.ncu-rep" --page details > "$OUT/profile_$tag.txt"
ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > "$OUT/profile_$tag.csv" \
  || echo "source page export failed: $(head -c 300 "$OUT/profile_$tag.csv")"
grep -E "Duration|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued" \
  "$OUT/profile_$tag.txt"
