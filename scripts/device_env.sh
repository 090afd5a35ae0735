# Sourced by the device scripts: the environment fa3 builds in on the lent H100 image.
# - No internet there: wheels carried in .whl/ (the nvidia-cutlass build requirement) are
#   installed into /tmp/site and put on PYTHONPATH.
# - The image sets CXX=/opt/gcc/bin/g++, a wrapper that links libstdc++ statically into the
#   module; a C++ exception thrown by the extension (every argument check) then kills the
#   process with SIGSEGV. The system g++ links it dynamically, as any normal toolchain does.
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -x /usr/bin/g++ ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++; fi
export PYTHONUNBUFFERED=1

# Build and install fa3 from this tree with 16 jobs (incremental: the build directory is kept).
fa3_build() {
  CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -v . "$@"
}
# The path of the installed extension module.
fa3_so() {
  python3 -c "import importlib.util as u; print(u.find_spec('fa3._C').origin)"
}

# The device cycles (gpu_cycle.sh, fp8_cycle.sh): everything printed also goes to $OUT/cycle.log
# ($OUT: the device tool's output folder, or ./.fa3_out); `step` prints a section header.
cycle_log() {
  OUT="${OUT:-$PWD/.fa3_out}"
  mkdir -p "$OUT"
  exec > >(tee "$OUT/cycle.log") 2>&1
}
step() { echo; echo "=== $* ==="; }

# Build with ptxas -v into $OUT/build.log and check what it says: libstdc++ linked dynamically,
# no serialized WGMMA (C7510-C7518: ptxas names the cause, e.g. C7512 too few registers, C7518 a
# compiler-inserted wait in a divergent path; C7517, a wait it injected) or ignored setmaxnreg
# (C7508), the SASS checks (spills included).
# Exits the cycle if the build fails; returns 1 if a check fails.
build_checked() {
  local start rc=0 so
  start=$(date +%s)
  fa3_build -C cmake.define.FA3_PTXAS_VERBOSE=ON > "$OUT/build.log" 2>&1 || { tail -n 60 "$OUT/build.log"; exit 1; }
  echo "build took $(( $(date +%s) - start )) s"
  so=$(fa3_so)
  ldd "$so" | grep -q libstdc++ || { echo "fa3._C has libstdc++ linked statically: C++ exceptions would crash; use the system g++"; exit 1; }
  echo "ptxas: $(grep -c 'Compiling entry' "$OUT/build.log") kernels; registers: $(grep -o 'Used [0-9]* registers' "$OUT/build.log" | sort | uniq -c | tr '\n' ';')"
  if grep -qE "C75(08|1[0-8])" "$OUT/build.log"; then
    echo "ptxas: WARNING (serialized wgmma or ignored setmaxnreg):"; grep -E "C75" "$OUT/build.log" | sort -u | head; rc=1
  else
    echo "ptxas: no C7508/C7510-C7518 messages"
  fi
  # Spills: check_sass.py below judges them (no local memory but its KNOWN_SPILLS); ptxas's list:
  grep -E "spill (stores|loads)" "$OUT/build.log" | grep -v " 0 bytes spill stores, 0 bytes spill loads" | sort | uniq -c
  python3 scripts/check_sass.py "$so" || rc=1
  return $rc
}

# A cycle's test step: pytest -q on the given arguments into $OUT/<log>; prints the failures and
# the summary line; returns pytest's status.
cycle_tests() {  # log-name pytest-arguments...
  local log=$1 rc
  shift
  python3 -m pytest -q -ra --tb=short "$@" > "$OUT/$log" 2>&1
  rc=$?
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/$log" | head -40
  return $rc
}

# compute-sanitizer's TOOL on `python3 ARGS...`, with a 240 s limit so that a hang (a CTA waiting
# for another) fails the step, not the device call; prints its summary, and the log's tail on a
# failure; returns its status.
sanitize() {  # tool python3-arguments...
  local tool=$1 rc
  shift
  timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 9 python3 "$@" > /tmp/san.log 2>&1
  rc=$?
  [ "$rc" -eq 124 ] && echo "$tool $*: timed out after 240 s"
  echo "$tool $*: exit $rc, $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log | tail -n 1)"
  [ "$rc" -eq 0 ] || tail -n 40 /tmp/san.log
  return $rc
}
