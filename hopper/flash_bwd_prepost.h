// The backward's two small kernels around the main one (flash_bwd_prepost.cu), in plain C++.
#pragma once

#include "flash_bwd_params.h"

namespace fa3 {

// Fills the workspace (bwd_workspace.h): D = rowsum(dO * O) and LSE * log2(e) per query row
// (0 and +inf on padded rows; a row that saw no key, LSE = -inf, gets +inf too: P = 0, no
// gradient), zeros the dQ accumulator and the deterministic mode's counters.
void run_bwd_preprocess(const BwdParams& params, void* stream);

// dQ = softmax_scale * dQ_accum, in the input type and dq's strides.
void run_bwd_postprocess(const BwdParams& params, void* stream);

}  // namespace fa3
