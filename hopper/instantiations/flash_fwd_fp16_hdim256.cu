// Forward kernels for fp16, head dim 256 (causal and not): one file per (dtype, head dim)
// so the build compiles them in parallel.
#include "flash_fwd_launch.hpp"

FA3_INSTANTIATE_FWD(kFloat16, kFloat16, 256)
