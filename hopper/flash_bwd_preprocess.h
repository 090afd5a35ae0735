// The backward's preprocess kernel, before the main one (flash_bwd_preprocess.cu), in plain C++.
// The dQ postprocess runs with the main kernel (flash_bwd_postprocess.hpp): it reads the
// accumulator in the main kernel's tile order.
#pragma once

#include "bwd_workspace.h"
#include "flash_bwd_params.h"

namespace fa3 {

// Fills the workspace (bwd_workspace.h): D = rowsum(dO * O) and LSE * log2(e) per query row
// (0 and +inf on padded rows; a row that saw no key, LSE = -inf, gets +inf too: P = 0, no
// gradient), zeros the dQ accumulator and the deterministic mode's counters. w: the call's
// bwd_workspace_layout (run_bwd computes it once).
void run_bwd_preprocess(const BwdParams& params, const BwdWorkspaceLayout& w, void* stream);

}  // namespace fa3
