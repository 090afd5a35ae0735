// Declaration of the forward kernels built by instantiations/*.cu, in plain C++ so the
// dispatcher can call them without seeing CuTe.
#pragma once

#include "flash_params.h"

namespace fa3 {

template <Dtype kDtype, Dtype kOutDtype, int kHeadDim, bool kCausal, FwdSchedule kSchedule>
void run_fwd_instance(FwdParams const& params, void* stream);

}  // namespace fa3
