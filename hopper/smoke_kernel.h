// Toolchain smoke test: a trivial CuTe kernel and an architecture probe. They prove that
// the extension's device code was built for sm_90a with CuTe and runs on the GPU; the
// attention kernels are built by the same flags.
#pragma once

#include <cstdint>

namespace fa3 {

// y[i, j] = alpha * x[i, j] for a rows x cols fp32 matrix with row strides ldx, ldy
// (elements; the column stride is 1). Tails are predicated, any shape works.
void launch_scale_2d(const float* x, float* y, int64_t rows, int64_t cols, int64_t ldx,
                     int64_t ldy, float alpha, void* stream);

// Writes {__CUDA_ARCH__, 1 if the arch-specific sm_90a features are compiled in} to out[0..1].
void launch_arch_probe(int32_t* out, void* stream);

}  // namespace fa3
