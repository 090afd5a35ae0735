// Trivial CuTe kernels for the toolchain smoke test (see smoke_kernel.h).
#include <cute/tensor.hpp>

#include "cuda_check.h"
#include "smoke_kernel.h"

namespace fa3 {
namespace {

constexpr int kTileRows = 32;
constexpr int kTileCols = 64;
constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) scale_2d_kernel(const float* x, float* y, int64_t rows,
                                                            int64_t cols, int64_t ldx, int64_t ldy,
                                                            float alpha) {
  using namespace cute;
  auto shape = make_shape(rows, cols);
  Tensor mX = make_tensor(make_gmem_ptr(x), shape, make_stride(ldx, Int<1>{}));
  Tensor mY = make_tensor(make_gmem_ptr(y), shape, make_stride(ldy, Int<1>{}));
  // The identity tensor holds each element's (row, col), to predicate the partial tiles.
  Tensor mCoord = make_identity_tensor(shape);

  auto tiler = make_shape(Int<kTileRows>{}, Int<kTileCols>{});
  auto tile = make_coord(int64_t(blockIdx.x), int64_t(blockIdx.y));
  Tensor gX = local_tile(mX, tiler, tile);
  Tensor gY = local_tile(mY, tiler, tile);
  Tensor cXY = local_tile(mCoord, tiler, tile);

  // Consecutive threads take consecutive columns so each warp reads a contiguous run.
  auto thr_layout = make_layout(make_shape(Int<kThreads / kTileCols>{}, Int<kTileCols>{}), LayoutRight{});
  Tensor tX = local_partition(gX, thr_layout, threadIdx.x);
  Tensor tY = local_partition(gY, thr_layout, threadIdx.x);
  Tensor tC = local_partition(cXY, thr_layout, threadIdx.x);
  CUTE_UNROLL
  for (int i = 0; i < size(tX); ++i) {
    if (elem_less(tC(i), shape)) tY(i) = alpha * tX(i);
  }
}

__global__ void arch_probe_kernel(int32_t* out) {
#if defined(__CUDA_ARCH__)
  out[0] = __CUDA_ARCH__;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  out[1] = 1;
#else
  out[1] = 0;
#endif
#endif
}

}  // namespace

void launch_scale_2d(const float* x, float* y, int64_t rows, int64_t cols, int64_t ldx,
                     int64_t ldy, float alpha, void* stream) {
  FA3_CHECK_ARG(rows >= 0, "rows must be >= 0, got " << rows);
  FA3_CHECK_ARG(cols >= 0, "cols must be >= 0, got " << cols);
  FA3_CHECK_ARG(ldx >= cols, "ldx must be >= cols (" << cols << "), got " << ldx);
  FA3_CHECK_ARG(ldy >= cols, "ldy must be >= cols (" << cols << "), got " << ldy);
  if (rows == 0 || cols == 0) return;
  FA3_CHECK_ARG(x != nullptr, "x must not be a null pointer");
  FA3_CHECK_ARG(y != nullptr, "y must not be a null pointer");
  int64_t grid_rows = (rows + kTileRows - 1) / kTileRows;
  int64_t grid_cols = (cols + kTileCols - 1) / kTileCols;
  FA3_CHECK_ARG(grid_rows < (int64_t(1) << 31) && grid_cols <= 65535,
                "matrix too large for the smoke kernel: " << rows << " x " << cols);
  dim3 grid(static_cast<unsigned>(grid_rows), static_cast<unsigned>(grid_cols));
  scale_2d_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, y, rows, cols, ldx,
                                                                            ldy, alpha);
  FA3_CHECK_LAUNCH();
}

void launch_arch_probe(int32_t* out, void* stream) {
  FA3_CHECK_ARG(out != nullptr, "out must not be a null pointer");
  arch_probe_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(out);
  FA3_CHECK_LAUNCH();
}

}  // namespace fa3
