#!/usr/bin/env bash
# The whole device cycle on a Hopper machine, one command: build fa3 with all cores, run every
# test (the GPU tier included), the smoke kernels under compute-sanitizer, and the accuracy
# report. Logs go to $OUT (the device tool's output folder) or ./.fa3_out.
#
# With the device tool, from the repo root (the machine has no internet, so the CUTLASS wheel
# travels in .whl/, see README "Development"):
#   run(command="bash scripts/gpu_cycle.sh", carry=[".whl"])
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/.fa3_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "=== $* ==="; }

if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# The CUDA image sets CXX=/opt/gcc/bin/g++, a wrapper that links libstdc++ statically into the
# module; a C++ exception thrown by the extension (every argument check) then kills the process
# with SIGSEGV. The system g++ links it dynamically, as any normal toolchain does.
if [ -x /usr/bin/g++ ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++; fi

step "GPU"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$OUT/gpu.txt"

step "build (pip install, 16 jobs)"
start=$(date +%s)
CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -v . \
  -C cmake.define.FA3_PTXAS_VERBOSE=ON > "$OUT/build.log" 2>&1 || { tail -n 60 "$OUT/build.log"; exit 1; }
echo "build took $(( $(date +%s) - start )) s"
grep -E "C7510|spill" "$OUT/build.log" | grep -v " 0 bytes spill" | sort -u | head -20 || true
so=$(python3 -c "import importlib.util as u; print(u.find_spec('fa3._C').origin)")
ldd "$so" | grep -q libstdc++ || { echo "fa3._C has libstdc++ linked statically: C++ exceptions would crash; use the system g++"; exit 1; }
python3 -m fa3 | tee "$OUT/features.txt"

step "tests"
python3 -m pytest -ra -q 2>&1 | tee "$OUT/pytest.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "smoke kernels under compute-sanitizer"
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 9 python3 -m fa3 --smoke > "$OUT/sanitizer_$tool.log" 2>&1
  rc=$?
  echo "$tool: exit $rc, $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_$tool.log" | tail -n 1)"
  [ "$rc" -eq 0 ] || status=1
done

step "accuracy (GPU)"
python3 -m fa3.accuracy --no-progress --json "$OUT/accuracy.json" 2>&1 | tee "$OUT/accuracy.txt"

step "summary"
tail -n 3 "$OUT/pytest.log"
echo "gpu_cycle exit status: $status"
exit $status
