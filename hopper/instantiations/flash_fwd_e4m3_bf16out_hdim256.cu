// FP8 (e4m3) forward kernels writing bf16 O, head dim 256 (causal and not): one file per (output
// dtype, head dim) so the build compiles them in parallel.
#include "flash_fwd_launch.hpp"

FA3_INSTANTIATE_FWD(kFloat8E4M3, kBFloat16, 256)
