// The pieces of a key tile cut between CTAs (bwd_schedule.h): each piece ends with dK (unscaled)
// and dV summed over its own steps, adds them into the tile's fp32 sum in the workspace (zeroed
// by the preprocess) and takes a ticket; the piece that takes the last ticket knows every other
// piece's additions are done, reads the whole sum back into its registers and runs the epilogue.
// No piece waits for another. The additions' order varies from run to run (deterministic mode
// never cuts tiles).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

#include "bwd_workspace.h"
#include "named_barriers.h"

namespace fa3 {

template <class Traits>
struct BwdSplitSum {
  static constexpr int kConsumerThreads = Traits::kConsumerThreads;
  static constexpr int64_t kSumChunks = bwd_split_sum_floats(Traits::kBlockN, Traits::kHeadDim) / 4;

  struct Params {
    int* tickets;  // per cut tile: how many of its pieces have added theirs
    float4* sums;  // per cut tile: dK then dV, in float4 chunks, chunk-major (coalesced)
  };

  static Params to_underlying_arguments(BwdParams const& p, BwdWorkspaceLayout const& w) {
    char* ws = static_cast<char*>(p.workspace);
    return {reinterpret_cast<int*>(ws + w.split_tickets_offset), reinterpret_cast<float4*>(ws + w.split_sums_offset)};
  }

  // Called by all consumer threads of one of the `pieces` pieces of cut tile `split`. Returns true
  // if this piece finished the tile: its registers now hold the whole tile's dK and dV.
  template <class FragKV>
  CUTLASS_DEVICE bool add_and_finish(Params const& params, int split, int pieces, FragKV& tdKrdK, FragKV& tdVrdV,
                                     int thread_idx, int& smem_ticket) const {
    using namespace cute;
    constexpr int kChunks = decltype(size(tdKrdK))::value / 4;  // per accumulator and thread
    static_assert(2 * kChunks * kConsumerThreads == kSumChunks);
    float4* sum_dk = params.sums + split * kSumChunks;
    float4* sum_dv = sum_dk + kChunks * kConsumerThreads;
    add_to(tdKrdK, sum_dk, thread_idx);
    add_to(tdVrdV, sum_dv, thread_idx);
    __threadfence();  // this thread's additions are done device-wide before the ticket is taken
    sync_consumers();
    if (thread_idx == 0) {
      smem_ticket = atomicAdd(&params.tickets[split], 1);
      __threadfence();  // the other pieces' additions (fenced before their tickets) are seen from here on
    }
    sync_consumers();
    if (smem_ticket != pieces - 1) return false;
    read_back(tdKrdK, sum_dk, thread_idx);
    read_back(tdVrdV, sum_dv, thread_idx);
    return true;
  }

 private:
  CUTLASS_DEVICE static void sync_consumers() {
    cutlass::arch::NamedBarrier::sync(kConsumerThreads, int(BwdNamedBarrier::kSplitTile));
  }
  template <class FragKV>
  CUTLASS_DEVICE static void add_to(FragKV const& acc, float4* chunks, int thread_idx) {
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < cute::size(acc) / 4; ++c) {
      asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(chunks + c * kConsumerThreads + thread_idx),
                   "f"(acc(4 * c)), "f"(acc(4 * c + 1)), "f"(acc(4 * c + 2)), "f"(acc(4 * c + 3))
                   : "memory");
    }
  }
  template <class FragKV>
  CUTLASS_DEVICE static void read_back(FragKV& acc, float4 const* chunks, int thread_idx) {
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < cute::size(acc) / 4; ++c) {
      float4 const v = __ldcg(&chunks[c * kConsumerThreads + thread_idx]);  // from L2: other SMs added
      acc(4 * c) = v.x;
      acc(4 * c + 1) = v.y;
      acc(4 * c + 2) = v.z;
      acc(4 * c + 3) = v.w;
    }
  }
};

}  // namespace fa3
