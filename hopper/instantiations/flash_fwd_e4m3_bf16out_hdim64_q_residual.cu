// FP8 (e4m3) forward kernels writing bf16 O, head dim 64, that add Q's second e4m3 term in the S
// GEMM (FwdParams::q_residual; causal and not): a file of their own for a parallel build.
#include "flash_fwd_launch.hpp"

FA3_INSTANTIATE_FWD_Q_RESIDUAL(kBFloat16)
