// The backward's dQ postprocess: dQ = softmax_scale * dQ_accum in the input type and dq's
// strides. It reads the accumulator in the main kernel's tile order (bwd_dq_accum.hpp), so it is
// built per kernel traits and launched by run_bwd_instance right after the main kernel. One CTA
// per (query tile, head, batch), one thread per dQ-GEMM consumer thread: float4 loads, each
// thread's values placed in shared memory by the same fragment coordinates the main kernel
// wrote them with, then whole rows written out in 16-byte chunks.
#pragma once

#include <cute/tensor.hpp>

#include "bwd_dq_accum.hpp"
#include "bwd_workspace.h"
#include "cuda_check.h"
#include "flash_bwd_params.h"

namespace fa3 {

template <class Traits>
__global__ void __launch_bounds__(Traits::kConsumerThreads)
    bwd_postprocess_kernel(BwdParams const p, int seqlen_q_rounded, float const* __restrict__ dq_accum) {
  using Element = typename Traits::Element;
  using Order = BwdDqAccumOrder<Traits>;
  constexpr int kBlockM = Traits::kBlockM;
  constexpr int kHeadDim = Traits::kHeadDim;
  // The tile in the output type, rows padded by 16 bytes: a warp's pair stores (8 rows x 4
  // column pairs) then fall in 32 different banks.
  constexpr int kRowElems = kHeadDim + 8;
  __shared__ alignas(16) Element staged[kBlockM * kRowElems];
  int const m_block = blockIdx.x;
  int const h = blockIdx.y;
  int const b = blockIdx.z;
  int const tid = threadIdx.x;
  float const* tile =
      dq_accum + ((int64_t(b) * p.nheads + h) * seqlen_q_rounded + int64_t(m_block) * kBlockM) * kHeadDim;
  auto coords = Order::coordinates(tid);
  static_assert(decltype(cute::size(coords))::value == Order::kValuesPerThread);
  CUTLASS_PRAGMA_UNROLL
  for (int i = 0; i < Order::kValuesPerThread; i += 4) {
    float4 const acc = *reinterpret_cast<float4 const*>(tile + Order::offset(tid, i));
    float const values[4] = {acc.x, acc.y, acc.z, acc.w};
    CUTLASS_PRAGMA_UNROLL
    for (int j = 0; j < 4; ++j) {
      staged[Order::row(coords(i + j)) * kRowElems + Order::column(coords(i + j))] =
          Element(values[j] * p.softmax_scale);
    }
  }
  __syncthreads();
  // 16-byte chunks of whole rows to dq (its rows are 16-byte aligned: run_bwd's TMA checks).
  constexpr int kChunksPerRow = kHeadDim * sizeof(Element) / 16;
  Element* dq = static_cast<Element*>(p.dq) + b * p.dq_stride.batch + h * p.dq_stride.head;
  CUTLASS_PRAGMA_UNROLL
  for (int c = tid; c < kBlockM * kChunksPerRow; c += Traits::kConsumerThreads) {
    int const r = c / kChunksPerRow;
    int const chunk = c % kChunksPerRow;
    int const row = m_block * kBlockM + r;
    if (row < p.seqlen_q) {
      reinterpret_cast<uint4*>(dq + row * p.dq_stride.row)[chunk] =
          *reinterpret_cast<uint4 const*>(staged + r * kRowElems + chunk * 8);
    }
  }
}

template <class Traits>
void run_bwd_postprocess(BwdParams const& p, BwdWorkspaceLayout const& w, void* stream) {
  auto dq_accum = reinterpret_cast<float const*>(static_cast<char const*>(p.workspace) + w.dq_accum_offset);
  dim3 grid(w.m_blocks, p.nheads, p.batch);
  bwd_postprocess_kernel<Traits><<<grid, Traits::kConsumerThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      p, w.seqlen_q_rounded, dq_accum);
  FA3_CHECK_LAUNCH();
}

}  // namespace fa3
