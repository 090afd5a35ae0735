// Joins the two pieces of a query tile that the persistent scheduler cut between two CTAs
// (stream_k_plan.h). Each piece ends with an unnormalized O accumulator and the online
// softmax's row maxima and sums over its own key tiles. Whichever CTA finishes its piece first
// (a ticket decides, so no CTA ever waits for one that may not be running yet) parks that state
// in its workspace slot and moves on; the second waits for the first's ready flag, merges the
// parked state into its registers and runs the epilogue for the whole tile.
// The merge does not depend on which piece came first (the head piece, step 0, is always its
// first operand, with rounded products and sums), so results are bitwise repeatable.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

#include "barrier_utils.hpp"
#include "named_barriers.h"
#include "stream_k_plan.h"
#include "wgmma_utils.hpp"

namespace fa3 {

template <class Traits>
struct SplitTileMerge {
  static constexpr int kConsumerThreads = Traits::kConsumerThreads;

  struct Params {
    int* tickets;     // per slot: how many pieces have finished
    int* ready;       // per slot: 1 once the first piece's state is parked
    float4* partials;  // per slot: the parked state, in float4 chunks, chunk-major (coalesced)
    int64_t slot_chunks;
  };

  static Params to_underlying_arguments(void* workspace, StreamKPlan const& plan) {
    if (!plan.active()) return {nullptr, nullptr, nullptr, 0};
    char* base = static_cast<char*>(workspace);
    return {reinterpret_cast<int*>(base), reinterpret_cast<int*>(base) + plan.num_ctas,
            reinterpret_cast<float4*>(base + plan.flags_bytes()),
            StreamKPlan::slot_floats(Traits::kBlockM, Traits::kHeadDim) / 4};
  }

  // Returns true if this CTA now holds the whole tile's state and must write the tile; false if
  // it parked its piece (its last V stage, stage_empty, is then released here).
  template <class FragO, class Softmax>
  CUTLASS_DEVICE bool merge_or_park(Params const& params, int slot, bool head_piece, FragO& tOrO, Softmax& softmax,
                                    int thread_idx, int& smem_ticket, uint64_t* stage_empty) const {
    using namespace cute;
    constexpr int kChunks = decltype(size(tOrO))::value / 4;
    static_assert(decltype(size(tOrO))::value % 4 == 0);
    static_assert(sizeof(softmax.row_max) / sizeof(float) == 2, "two rows per thread (m64 WGMMA)");
    static_assert(kChunks * 4 * kConsumerThreads + 4 * kConsumerThreads ==
                  StreamKPlan::slot_floats(Traits::kBlockM, Traits::kHeadDim));
    float4* parked = params.partials + slot * params.slot_chunks;
    float* o = reinterpret_cast<float*>(tOrO.data());

    if (thread_idx == 0) smem_ticket = atomicAdd(&params.tickets[slot], 1);
    sync_consumers();
    bool first = smem_ticket == 0;
    sync_consumers();  // everyone has read the ticket before it can be overwritten

    if (first) {
      CUTLASS_PRAGMA_UNROLL
      for (int c = 0; c < kChunks; ++c) {
        parked[c * kConsumerThreads + thread_idx] = make_float4(o[4 * c], o[4 * c + 1], o[4 * c + 2], o[4 * c + 3]);
      }
      parked[kChunks * kConsumerThreads + thread_idx] =
          make_float4(softmax.row_max[0], softmax.row_max[1], softmax.row_sum[0], softmax.row_sum[1]);
      __threadfence();  // this thread's part is visible device-wide before the flag
      sync_consumers();
      if (thread_idx == 0) {
        store_release(&params.ready[slot], 1);
        if (stage_empty != nullptr) arrive_on_empty_barrier(stage_empty, kConsumerThreads);
      }
      return false;
    }

    if (thread_idx == 0) {
      while (load_acquire(&params.ready[slot]) == 0) __nanosleep(64);
    }
    sync_consumers();
    Tensor other = make_tensor_like(tOrO);
    float* other_o = reinterpret_cast<float*>(other.data());
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < kChunks; ++c) {
      float4 v = __ldcg(&parked[c * kConsumerThreads + thread_idx]);
      other_o[4 * c] = v.x;
      other_o[4 * c + 1] = v.y;
      other_o[4 * c + 2] = v.z;
      other_o[4 * c + 3] = v.w;
    }
    float4 stats = __ldcg(&parked[kChunks * kConsumerThreads + thread_idx]);
    float other_max[2] = {stats.x, stats.y};
    float other_sum[2] = {stats.z, stats.w};

    // head: the piece holding step 0; tail: the other one. (Selects per value, not pointers
    // to one array or the other: registers cannot be addressed.)
    Tensor o_rows = make_tensor(tOrO.data(), acc_rowcol(tOrO.layout()));
    Tensor other_rows = make_tensor(other.data(), acc_rowcol(tOrO.layout()));
    static_assert(decltype(size<0>(o_rows))::value == 2);
    float head_scale[2], tail_scale[2];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      float head_max = head_piece ? softmax.row_max[r] : other_max[r];
      float tail_max = head_piece ? other_max[r] : softmax.row_max[r];
      float head_sum = head_piece ? softmax.row_sum[r] : other_sum[r];
      float tail_sum = head_piece ? other_sum[r] : softmax.row_sum[r];
      float m = fmaxf(head_max, tail_max);  // maxima in the scaled (log2) domain, as OnlineSoftmax
      float m_safe = m == -INFINITY ? 0.f : m;
      head_scale[r] = exp2f(head_max - m_safe);
      tail_scale[r] = exp2f(tail_max - m_safe);
      softmax.row_max[r] = m;
      softmax.row_sum[r] = __fadd_rn(__fmul_rn(head_sum, head_scale[r]), __fmul_rn(tail_sum, tail_scale[r]));
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      CUTLASS_PRAGMA_UNROLL
      for (int c = 0; c < size<1>(o_rows); ++c) {
        float head = head_piece ? o_rows(r, c) : other_rows(r, c);
        float tail = head_piece ? other_rows(r, c) : o_rows(r, c);
        o_rows(r, c) = __fadd_rn(__fmul_rn(head, head_scale[r]), __fmul_rn(tail, tail_scale[r]));
      }
    }
    return true;
  }

 private:
  CUTLASS_DEVICE static void sync_consumers() {
    cutlass::arch::NamedBarrier::sync(kConsumerThreads, int(FwdNamedBarrier::kSplitTile));
  }
  CUTLASS_DEVICE static void store_release(int* flag, int value) {
    asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(flag), "r"(value) : "memory");
  }
  CUTLASS_DEVICE static int load_acquire(int const* flag) {
    int value;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(value) : "l"(flag) : "memory");
    return value;
  }
};

}  // namespace fa3
