// The backward's preprocess kernel (flash_bwd_preprocess.h): a memory-bound row pass, one warp
// per query row, fp32 arithmetic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "bwd_workspace.h"
#include "cuda_check.h"
#include "flash_bwd_preprocess.h"

namespace fa3 {
namespace {

constexpr int kRowsPerBlock = 8;  // warps per block
constexpr float kLog2e = 1.4426950408889634f;

template <class T> __device__ float to_float(T x);
template <> __device__ float to_float(__half x) { return __half2float(x); }
template <> __device__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// grid (row blocks over seqlen_q_rounded, nheads, batch)
template <class T>
__global__ void bwd_preprocess_kernel(BwdParams p, int seqlen_q_rounded, float* lse_log2, float* dsum) {
  int const lane = threadIdx.x % 32;
  int const row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
  int const h = blockIdx.y;
  int const b = blockIdx.z;
  if (row >= seqlen_q_rounded) return;
  float d = 0.f;
  float lse = INFINITY;
  if (row < p.seqlen_q) {
    T const* o = static_cast<T const*>(p.o) + b * p.o_stride.batch + row * p.o_stride.row + h * p.o_stride.head;
    T const* dout =
        static_cast<T const*>(p.dout) + b * p.dout_stride.batch + row * p.dout_stride.row + h * p.dout_stride.head;
    for (int c = lane; c < p.headdim; c += 32) d += to_float(o[c]) * to_float(dout[c]);
    float const stored = p.lse[(int64_t(b) * p.nheads + h) * p.seqlen_q + row];
    lse = stored == -INFINITY ? INFINITY : stored * kLog2e;
  }
  for (int offset = 16; offset > 0; offset /= 2) d += __shfl_xor_sync(0xffffffff, d, offset);
  if (lane == 0) {
    int64_t const i = (int64_t(b) * p.nheads + h) * seqlen_q_rounded + row;
    dsum[i] = d;
    lse_log2[i] = lse;
  }
}

dim3 row_grid(int rows, const BwdParams& p) {
  return dim3((rows + kRowsPerBlock - 1) / kRowsPerBlock, p.nheads, p.batch);
}

}  // namespace

void run_bwd_preprocess(const BwdParams& p, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  BwdWorkspaceLayout w = bwd_workspace_layout(p.batch, p.seqlen_q, p.nheads, p.headdim);
  char* ws = static_cast<char*>(p.workspace);
  FA3_CUDA_CHECK(cudaMemsetAsync(ws + w.dq_accum_offset, 0, w.lse_log2_offset - w.dq_accum_offset, s));
  FA3_CUDA_CHECK(cudaMemsetAsync(ws + w.counter_offset, 0, w.bytes - w.counter_offset, s));
  auto lse_log2 = reinterpret_cast<float*>(ws + w.lse_log2_offset);
  auto dsum = reinterpret_cast<float*>(ws + w.dsum_offset);
  dim3 grid = row_grid(w.seqlen_q_rounded, p);
  if (p.dtype == Dtype::kFloat16) {
    bwd_preprocess_kernel<__half><<<grid, kRowsPerBlock * 32, 0, s>>>(p, w.seqlen_q_rounded, lse_log2, dsum);
  } else {
    bwd_preprocess_kernel<__nv_bfloat16><<<grid, kRowsPerBlock * 32, 0, s>>>(p, w.seqlen_q_rounded, lse_log2, dsum);
  }
  FA3_CHECK_LAUNCH();
}

}  // namespace fa3
