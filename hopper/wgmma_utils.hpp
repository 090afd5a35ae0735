// Helpers around SM90 warpgroup MMAs: issuing a tiled GEMM over the K blocks, and views of
// the fp32 accumulator registers (as rows x columns for softmax, as the A operand of the next
// GEMM for P).
#pragma once

#include <cute/tensor.hpp>

namespace fa3 {

// C (+)= A * B over all K blocks of the fragments, as one warpgroup-wide async batch.
// kZeroInit: overwrite C instead of accumulating. kWait: wait for all but kWait batches
// (0: for this one), or -1 to return with the batch in flight.
template <bool kZeroInit, int kWait, class TiledMma, class FragA, class FragB, class FragC>
CUTLASS_DEVICE void warpgroup_gemm(TiledMma& tiled_mma, FragA const& tCrA, FragB const& tCrB, FragC& tCrC) {
  // A from registers must not be reordered across the async MMA by the compiler.
  constexpr bool kAFromRegisters =
      !cute::is_same_v<typename FragA::engine_type::iterator, cute::GMMA::DescriptorIterator>;
  if constexpr (kAFromRegisters) cute::warpgroup_fence_operand(const_cast<FragA&>(tCrA));
  cute::warpgroup_fence_operand(tCrC);
  cute::warpgroup_arrive();
  if constexpr (kZeroInit) tiled_mma.accumulate_ = cute::GMMA::ScaleOut::Zero;
  CUTLASS_PRAGMA_UNROLL
  for (int k = 0; k < cute::size<2>(tCrA); ++k) {
    cute::gemm(tiled_mma, tCrA(cute::_, cute::_, k), tCrB(cute::_, cute::_, k), tCrC);
    tiled_mma.accumulate_ = cute::GMMA::ScaleOut::One;
  }
  cute::warpgroup_commit_batch();
  if constexpr (kWait >= 0) cute::warpgroup_wait<kWait>();
  cute::warpgroup_fence_operand(tCrC);
  if constexpr (kAFromRegisters) cute::warpgroup_fence_operand(const_cast<FragA&>(tCrA));
}

// Keeps the work that `value` depends on ahead of the next wgmma.wait_group. ptxas schedules
// the wait as early as register dependences allow, i.e. above independent ALU work that the
// source puts before it: without this, the softmax under the PV GEMM moved below the wait and
// ran after the GEMM, not beside it (seen in the SASS: no MUFU between wait_group 1 and 0).
// ptxas keeps shared-memory stores in order with the wait, so one lane per warp stores a value
// computed from the last of that work to `slot`, a word nothing reads.
CUTLASS_DEVICE void pin_before_wgmma_wait(float value, float& slot) {
  if (cute::elect_one_sync()) {
    asm volatile("st.shared.f32 [%0], %1;" ::"r"(cute::cast_smem_ptr_to_uint(&slot)), "f"(value) : "memory");
  }
}

// An SM90 accumulator fragment is ((2, 2, N/8), MMA_M, MMA_N): per thread, 2 adjacent columns,
// rows r and r+8, N/8 column groups. As (rows, cols): ((2, MMA_M), (2, N/8, MMA_N)).
template <class Layout>
CUTLASS_DEVICE constexpr auto acc_rowcol(Layout const& acc) {
  using namespace cute;
  static_assert(rank_v<Layout> == 3 && decltype(rank<0>(Layout{}))::value == 3);
  auto v = get<0>(acc);
  return make_layout(make_layout(get<1>(v), get<1>(acc)), make_layout(get<0>(v), get<2>(v), get<2>(acc)));
}

// The same registers read as the A operand of a 16-bit RS WGMMA with K = the accumulator's N:
// each K=16 block is two of the accumulator's 8-column groups. ((2, 2, 2), MMA_M, (N/16, MMA_N)).
template <class Layout>
CUTLASS_DEVICE constexpr auto acc_as_a_operand(Layout const& acc) {
  using namespace cute;
  static_assert(rank_v<Layout> == 3 && decltype(rank<0>(Layout{}))::value == 3);
  static_assert(decltype(size<0, 2>(Layout{}))::value % 2 == 0, "N of the accumulator must be a multiple of 16");
  auto v = logical_divide(get<0>(acc), Shape<Underscore, Underscore, _2>{});  // (2, 2, (2, N/16))
  return make_layout(make_layout(get<0>(v), get<1>(v), get<2, 0>(v)), get<1>(acc),
                     make_layout(get<2, 1>(v), get<2>(acc)));
}

// Reductions across the 4 lanes that hold one accumulator row.
CUTLASS_DEVICE float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 2));
}

CUTLASS_DEVICE float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffff, x, 1);
  return x + __shfl_xor_sync(0xffffffff, x, 2);
}

}  // namespace fa3
