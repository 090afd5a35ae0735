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
