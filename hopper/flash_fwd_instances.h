// Declaration of the forward kernels built by instantiations/*.cu, in plain C++ so the
// dispatcher can call them without seeing CuTe.
#pragma once

#include "flash_params.h"

namespace fa3 {

// kQResidual: the S GEMM adds FwdParams::q_residual K^T (FP8, head dim 64).
template <Dtype kDtype, Dtype kOutDtype, int kHeadDim, bool kCausal, FwdSchedule kSchedule, bool kQResidual = false>
void run_fwd_instance(FwdParams const& params, void* stream);

}  // namespace fa3
