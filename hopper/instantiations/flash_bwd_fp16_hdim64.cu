// Backward kernels for fp16, head dim 64 (causal and not): one file per (dtype, head dim) so
// the build compiles them in parallel.
#include "flash_bwd_launch.hpp"

FA3_INSTANTIATE_BWD(kFloat16, 64)
