// Helpers around SM90 warpgroup MMAs: issuing a tiled GEMM over the K blocks, and views of
// the fp32 accumulator registers (as rows x columns for softmax, as the A operand of the next
// GEMM for P).
#pragma once

#include <cute/tensor.hpp>

namespace fa3 {

// The slice of tiled_mma for thread thread_idx's shared-memory operands (their descriptors).
// Those depend only on the warpgroup, so the slice is taken for its first thread, the warpgroup
// read through a shuffle: a value the compiler knows to be warp-uniform, which keeps the
// descriptors in uniform registers. Sliced by thread_idx itself, Q's descriptor was copied in
// with R2UR before every WGMMA. Forward only: in the backward (every operand of its five GEMMs)
// it cut the loop by 50 instructions but measured slower (head dim 64 16k 422 -> 408 TFLOP/s,
// 128 581 -> 570; benchmarks/results/2026-12-06_h100_ab_bwd_uniform_slices.txt).
template <class TiledMma>
CUTLASS_DEVICE auto warpgroup_slice(TiledMma const& tiled_mma, int thread_idx) {
  int const warp_group = __shfl_sync(0xffffffff, thread_idx / cutlass::NumThreadsPerWarpGroup, 0);
  return tiled_mma.get_thread_slice(warp_group * cutlass::NumThreadsPerWarpGroup);
}

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

// C = sum over t of A_t B, issued as one batch and not waited for: A from shared memory with its
// terms in mode 3 (tCrA(_, _, k, t)), each against the same B (Q's two e4m3 terms times K).
template <class TiledMma, class FragA, class FragB, class FragC>
CUTLASS_DEVICE void warpgroup_gemm_terms(TiledMma& tiled_mma, FragA const& tCrA, FragB const& tCrB, FragC& tCrC) {
  cute::warpgroup_fence_operand(tCrC);
  cute::warpgroup_arrive();
  tiled_mma.accumulate_ = cute::GMMA::ScaleOut::Zero;
  CUTLASS_PRAGMA_UNROLL
  for (int t = 0; t < cute::size<3>(tCrA); ++t) {
    CUTLASS_PRAGMA_UNROLL
    for (int k = 0; k < cute::size<2>(tCrA); ++k) {
      cute::gemm(tiled_mma, tCrA(cute::_, cute::_, k, t), tCrB(cute::_, cute::_, k), tCrC);
      tiled_mma.accumulate_ = cute::GMMA::ScaleOut::One;
    }
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_fence_operand(tCrC);
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

// FP8: P's registers as the A operand of the 8-bit RS WGMMA (K = 32 per instruction). That
// operand gives a thread, per 32 keys, keys 4t..4t+3 and 16+4t..16+4t+3 (t = lane % 4) of rows r
// and r+8, in the value order (4 keys, 2 rows, 2 halves); the accumulator holds keys 2t, 2t+1,
// 8+2t, 9+2t (and +16). Instead of moving values between lanes, the keys of V are relabeled
// (the quantization kernel writes V^T with key 16g + PERM[p] at position 16g + p, PERM =
// 0 1 8 9 2 3 10 11 4 5 12 13 6 7 14 15), so operand slot 4t+j is the accumulator's key
// PERM[4t+j] and P converts in place: ((4, 2, 2), MMA_M, N/32), compact.
template <class AccLayout>
CUTLASS_DEVICE constexpr auto fp8_a_operand_layout(AccLayout const&) {
  using namespace cute;
  static_assert(decltype(size<2>(AccLayout{}))::value == 1, "one WGMMA atom along N");
  constexpr int kN = decltype(size<0, 2>(AccLayout{}))::value * 8;
  static_assert(kN % 32 == 0, "FP8 key tiles are multiples of 32");
  return make_layout(make_shape(Shape<_4, _2, _2>{}, size<1>(AccLayout{}), Int<kN / 32>{}));
}

// The 32-bit registers of fp8_a_operand_layout: register w holds, in its bytes 0..3, the
// accumulator values fp8_word_acc(w) + {0, 1, 4, 5}, all of accumulator row w % 2. (Accumulator
// index of (col, row, group) is col + 2 row + 4 group; operand register of (row, half, kb) is
// row + 2 half + 4 kb, holding keys cols 0, 1 of group g = 4 kb + 2 half, then of g + 1.)
CUTLASS_HOST_DEVICE constexpr int fp8_word_acc(int w) { return 16 * (w / 4) + 8 * ((w / 2) % 2) + 2 * (w % 2); }

// Four fp32 values -> one register of e4m3 (b0 in byte 0), rounded to nearest even and
// saturated (NaN stays NaN). One asm block, so that ptxas merges the second conversion into the
// first's register (F2FP ... MERGE_C) instead of packing the halves with a PRMT. cvt puts its
// first source in the upper byte.
CUTLASS_DEVICE uint32_t pack_e4m3x4(float b0, float b1, float b2, float b3) {
  uint32_t word;
  asm("{\n .reg .b16 lo, hi;\n"
      " cvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\n"
      " cvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;\n"
      " mov.b32 %0, {lo, hi};\n}"
      : "=r"(word)
      : "f"(b0), "f"(b1), "f"(b2), "f"(b3));
  return word;
}

// P (fp32, in the accumulator's registers) -> e4m3 in fp8_a_operand_layout.
template <class FragS, class FragP>
CUTLASS_DEVICE void convert_to_fp8_a_operand(FragS const& tSrS, FragP& tOrP) {
  using namespace cute;
  static_assert(decltype(size<1>(FragS{}))::value == 1, "one 64-row WGMMA atom per warpgroup");
  static_assert(decltype(size(FragP{}))::value == decltype(size(FragS{}))::value);
  float const* acc = tSrS.data();
  uint32_t* out = reinterpret_cast<uint32_t*>(raw_pointer_cast(tOrP.data()));
  CUTLASS_PRAGMA_UNROLL
  for (int w = 0; w < decltype(size(FragS{}))::value / 4; ++w) {
    int const first = fp8_word_acc(w);
    out[w] = pack_e4m3x4(acc[first], acc[first + 1], acc[first + 4], acc[first + 5]);
  }
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
