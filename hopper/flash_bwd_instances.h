// Declaration of the backward kernels built by instantiations/flash_bwd_*.cu (the main kernel and
// its dQ postprocess), in plain C++ so the dispatcher can call them without seeing CuTe.
#pragma once

#include "bwd_workspace.h"
#include "flash_bwd_params.h"

namespace fa3 {

template <Dtype kDtype, int kHeadDim, bool kCausal>
void run_bwd_instance(BwdParams const& params, BwdWorkspaceLayout const& workspace, void* stream);

}  // namespace fa3
