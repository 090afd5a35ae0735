// The backward's preprocess kernel (flash_bwd_preprocess.h): a memory-bound row pass, 16-byte
// loads, fp32 arithmetic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "bwd_workspace.h"
#include "cuda_check.h"
#include "flash_bwd_preprocess.h"

namespace fa3 {
namespace {

constexpr int kThreads = 256;
constexpr int kVector = 8;  // elements per 16-byte load
constexpr float kLog2e = 1.4426950408889634f;

template <class T> __device__ float to_float(T x);
template <> __device__ float to_float(__half x) { return __half2float(x); }
template <> __device__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// grid (row blocks over seqlen_q_rounded, nheads, batch); headdim / 8 threads per row, each
// reading 16 bytes of O and of dO (rows are 16-byte aligned: the TMA checks of run_bwd).
template <class T>
__global__ void __launch_bounds__(kThreads)
    bwd_preprocess_kernel(BwdParams p, int seqlen_q_rounded, float* lse_log2, float* dsum) {
  int const threads_per_row = p.headdim / kVector;
  int const part = threadIdx.x % threads_per_row;
  int const row = blockIdx.x * (kThreads / threads_per_row) + threadIdx.x / threads_per_row;
  int const h = blockIdx.y;
  int const b = blockIdx.z;
  float d = 0.f;
  float lse = INFINITY;
  if (row < p.seqlen_q) {
    T const* o = static_cast<T const*>(p.o) + b * p.o_stride.batch + row * p.o_stride.row + h * p.o_stride.head;
    T const* dout =
        static_cast<T const*>(p.dout) + b * p.dout_stride.batch + row * p.dout_stride.row + h * p.dout_stride.head;
    uint4 const o_bits = reinterpret_cast<uint4 const*>(o)[part];
    uint4 const dout_bits = reinterpret_cast<uint4 const*>(dout)[part];
    T const* o8 = reinterpret_cast<T const*>(&o_bits);
    T const* dout8 = reinterpret_cast<T const*>(&dout_bits);
    for (int c = 0; c < kVector; ++c) d += to_float(o8[c]) * to_float(dout8[c]);
    float const stored = p.lse[(int64_t(b) * p.nheads + h) * p.seqlen_q + row];
    lse = stored == -INFINITY ? INFINITY : stored * kLog2e;
  }
  // The row's threads are adjacent lanes of one warp (threads_per_row divides 32).
  for (int offset = threads_per_row / 2; offset > 0; offset /= 2) d += __shfl_xor_sync(0xffffffff, d, offset);
  if (part == 0 && row < seqlen_q_rounded) {
    int64_t const i = (int64_t(b) * p.nheads + h) * seqlen_q_rounded + row;
    dsum[i] = d;
    lse_log2[i] = lse;
  }
}

}  // namespace

void run_bwd_preprocess(const BwdParams& p, const BwdWorkspaceLayout& w, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  char* ws = static_cast<char*>(p.workspace);
  FA3_CUDA_CHECK(cudaMemsetAsync(ws + w.dq_accum_offset, 0, w.lse_log2_offset - w.dq_accum_offset, s));
  // The turn counters, and the cut key tiles' tickets and sums.
  FA3_CUDA_CHECK(cudaMemsetAsync(ws + w.counter_offset, 0, w.bytes - w.counter_offset, s));
  auto lse_log2 = reinterpret_cast<float*>(ws + w.lse_log2_offset);
  auto dsum = reinterpret_cast<float*>(ws + w.dsum_offset);
  int const rows_per_block = kThreads / (p.headdim / kVector);
  dim3 grid((w.seqlen_q_rounded + rows_per_block - 1) / rows_per_block, p.nheads, p.batch);
  if (p.dtype == Dtype::kFloat16) {
    bwd_preprocess_kernel<__half><<<grid, kThreads, 0, s>>>(p, w.seqlen_q_rounded, lse_log2, dsum);
  } else {
    bwd_preprocess_kernel<__nv_bfloat16><<<grid, kThreads, 0, s>>>(p, w.seqlen_q_rounded, lse_log2, dsum);
  }
  FA3_CHECK_LAUNCH();
}

}  // namespace fa3
