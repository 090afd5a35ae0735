// Online softmax over key tiles, in registers. Scores arrive raw (unscaled); the tile's scale
// (softmax scale * log2(e), times the Q and K descales for FP8) is folded into one FFMA before
// exp2, and the row maxima are kept in that scaled (log2) domain, so the scale may change from
// tile to tile. Each thread owns kRows rows of the tile; the four lanes of a quad share a row,
// so maxima are reduced across the quad every tile and the row sums (kept per thread) once at
// the end. Scales must be >= 0 (the maximum of raw scores is then that of scaled ones).
//
// FP8 (kFp8, step_fp8) differs in three ways:
// - P is computed as exp2(... + 8), up to 2^8.8, to use e4m3's range (max 448 = 2^8.807) above
//   its subnormals; the row sums carry the same factor, so O / sum is unchanged; the LSE takes
//   it out.
// - Lazy rescaling. O's rescale (one FMUL per accumulator register) sits between a warpgroup's
//   two GEMM issues, on the pingpong's critical path, and is almost always a multiplication by 1
//   once the first tiles have set the row maxima. So the reference max that P is taken against
//   moves only when some row of the warp sees a tile max above its reference by more than
//   kMaxSlack; step_fp8() then returns true and O must be rescaled, else O is left alone (a
//   warp-uniform branch). Rows whose max rose by less keep the stale reference, so P <= 2^(8 +
//   kMaxSlack) before the unit factor below.
// - O is accumulated in units of a V descale, o_unit (the PV GEMM adds P V8 with no scale). A key
//   tile whose V descale is within [2^-1, 2^0.3] of o_unit has the ratio folded into
//   its P (2^log2(ratio) added in the exponent, taken back out of the row sum); otherwise, or
//   whenever O is rescaled anyway, o_unit becomes the tile's descale and O's rescale factor
//   carries the change of units. The epilogue multiplies O by the last unit. A tile at the floor
//   descale (FLT_MIN) is all zeros (quant/e4m3.py) and keeps the current unit, so an all-zero V
//   block cannot blow O up by 1 / FLT_MIN. A NaN descale never folds: o_unit, and with it O,
//   become NaN.
#pragma once

#include <cfloat>
#include <cmath>

#include <cute/tensor.hpp>

#include "wgmma_utils.hpp"

namespace fa3 {

// 2^x on the FMA pipe, for a share of the exponentials (OnlineSoftmax's kFmaExp2Every, chosen in
// mainloop_fwd_sm90.hpp). x is rounded to an integer j by the 1.5 * 2^23 trick (j lands in the
// low mantissa bits of t); 2^(x - j), x - j in [-0.5, 0.5], is a degree-3 polynomial (relative
// error 7.7e-5, far below e4m3's rounding of P), times 2^j built in the exponent field. x is
// first clamped at -127 by a NaN-preserving max (2^-127 comes out as 0, as MUFU.EX2.FTZ gives
// for such x), so NaN stays NaN.
CUTLASS_DEVICE float exp2_on_fma(float x) {
  asm("max.NaN.f32 %0, %0, 0fC2FE0000;" : "+f"(x));  // max(x, -127)
  float t = x + 12582912.f;                          // 1.5 * 2^23 + j
  float f = x - (t - 12582912.f);
  float p = fmaf(fmaf(fmaf(0.05508868f, f, 0.24260405f), f, 0.69327623f), f, 0.99992895f);
  // t's bits are 0x4B400000 + j; shifted by 23, only j << 23 stays: 2^j = (j + 127) << 23.
  float two_j = __int_as_float((__float_as_int(t) << 23) + (127 << 23));
  return p * two_j;
}

// FP8: one key tile's factors (the V descale also as log2, which the unit-fold test compares).
struct Fp8TileScales {
  float scale_log2;      // softmax scale * log2(e) * the tile's Q and K descales
  float v_descale;       // the tile's V descale
  float v_descale_log2;  // and its log2
};

template <int kRows, bool kFp8 = false, int kChains = 1, int kFmaExp2Every = 0>
struct OnlineSoftmax {
  static constexpr float kPShift = kFp8 ? 8.f : 0.f;  // log2 of P's extra factor
  // FP8: P <= 2^kPShift * 2^kMaxSlack * 2^kUnitFoldMaxLog2 = 2^8.8 stays below e4m3's 448 = 2^8.807.
  static constexpr float kMaxSlack = 0.5f;
  static constexpr float kUnitFoldMaxLog2 = 0.3f;
  float row_max[kRows];  // reference max of scaled scores (log2 domain; -inf: no key seen yet)
  float row_sum[kRows];  // this thread's part of sum exp2(scaled score - row_max + kPShift)
  float o_unit;          // FP8: the V descale O is currently counted in (1 before any tile)
  float o_unit_log2;     // and its log2

  CUTLASS_DEVICE OnlineSoftmax() : o_unit(1.f), o_unit_log2(0.f) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.f;
    }
  }

  // 16-bit: turns the (rows, cols) raw scores into probabilities (in place), with scores scaled
  // by `scale_log2`, and sets o_scale, by which O must be rescaled before it takes in this tile.
  //
  // The row max and row sum are reductions over this thread's cols scores; as one running value
  // they would be chains of dependent FMNMX / FADD, whose latency the few warps per scheduler
  // cannot hide. So each row keeps kChains independent partial results
  // (FwdKernelTraits::kSoftmaxChains), combined at the end, and all rows are reduced side by
  // side (and their quad shuffles issued together).
  template <class Scores>
  CUTLASS_DEVICE void step(Scores& s, float (&o_scale)[kRows], float scale_log2) {
    static_assert(!kFp8, "FP8 tiles take step_fp8");
    static_assert(decltype(cute::size<0>(s))::value == kRows);
    constexpr int kCols = decltype(cute::size<1>(s))::value;
    float m[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = partial_reduce(s, r, [](float a, float b) { return fmaxf(a, b); });
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = quad_max(m[r]) * scale_log2;
    float m_shifted[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m_shifted[r] = new_reference(r, m[r], 1.f, o_scale[r]);
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < kCols; ++c) {
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) s(r, c) = exp2f(fmaf(s(r, c), scale_log2, -m_shifted[r]));
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) row_sum[r] += partial_reduce(s, r, [](float a, float b) { return a + b; });
  }

  // FP8: P of the raw scores tSrS (the S GEMM's accumulator), in place in fp32, for a key tile
  // with factors t; P V8 of this tile is then in units of o_unit. Returns whether O must be
  // rescaled, by o_scale, before it takes in this tile (warp-uniform; o_scale is set only then).
  // The maxima and exponentials go by the PV operand's 4-value groups (a max tree and a sum tree
  // per group, kChains chains across groups) and the unit-fold test compares log2 values: against
  // the column order with a division for the ratio (94a817f), one interleaved A/B on the H100
  // (..._ab_fp8_softmax_order.txt) read head dim 64 16k 604 -> 646 TFLOP/s, causal 562 -> 580,
  // 2k 522 -> 535; head dim 128 16k 912 -> 885, causal 862 -> 864, 2k 744 -> 738; 256 unchanged.
  // kBitsMax: take the maxima on the scores' bits first (row_maxima; for tiles with no mask).
  template <bool kBitsMax, class FragS>
  CUTLASS_DEVICE bool step_fp8(FragS& tSrS, float (&o_scale)[kRows], Fp8TileScales const& t) {
    static_assert(kFp8 && kRows == 2, "FP8, one m64 WGMMA atom per warpgroup");
    constexpr int kWords = decltype(cute::size(tSrS))::value / 4;
    float* acc = tSrS.data();
    bool const zero_block = t.v_descale == FLT_MIN;
    // log2 of the V-unit ratio this tile would fold into its P; NaN fails the range test.
    float const p_offset = zero_block ? 0.f : t.v_descale_log2 - o_unit_log2;
    bool const fold = p_offset >= -1.f && p_offset <= kUnitFoldMaxLog2;
    float m[kRows], tile_sum[kRows], m_shifted[kRows];
    row_maxima<kWords, kBitsMax>(acc, t.scale_log2, m);
    bool moved = false;
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) moved |= m[r] > row_max[r] + kMaxSlack;  // false for -inf and NaN
    bool const rescale = __any_sync(0xffffffff, moved || !fold);
    float sum_p_offset = 0.f;  // the V-unit ratio folded into P (log2), taken out of the sums
    if (rescale) {
      float const unit_change = take_unit(t, zero_block);
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) m_shifted[r] = new_reference(r, m[r], unit_change, o_scale[r]);
    } else {
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) m_shifted[r] = (row_max[r] == -INFINITY ? 0.f : row_max[r]) - kPShift - p_offset;
      sum_p_offset = p_offset;
    }
    exp_pass<kWords>(acc, m_shifted, t.scale_log2, tile_sum);
    add_tile_sums(tile_sum, sum_p_offset);
    return rescale;
  }

  // FP8, with O rescaled anyway: O is counted in the tile's V descale from now on (a zero block
  // keeps the unit). Returns O's factor for the change.
  CUTLASS_DEVICE float take_unit(Fp8TileScales const& t, bool zero_block) {
    if (zero_block) return 1.f;
    float unit_change = __fdividef(o_unit, t.v_descale);  // descales are < 2^126: exact enough
    o_unit = t.v_descale;
    o_unit_log2 = t.v_descale_log2;
    return unit_change;
  }

  // FP8: a tile's row sums, of P with the V-unit ratio 2^p_offset folded in, into the running sums.
  CUTLASS_DEVICE void add_tile_sums(float const (&tile_sum)[kRows], float p_offset) {
    float const sum_factor = p_offset == 0.f ? 1.f : exp2f(-p_offset);
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) row_sum[r] = fmaf(tile_sum[r], sum_factor, row_sum[r]);
  }

  // op over row r of s, as kChains interleaved chains (chain j takes columns j, j + kChains, ...)
  // combined pairwise at the end.
  template <class Scores, class Op>
  CUTLASS_DEVICE static float partial_reduce(Scores const& s, int r, Op op) {
    constexpr int kCols = decltype(cute::size<1>(s))::value;
    static_assert(kCols % kChains == 0, "the row splits evenly into the chains");
    float acc[kChains];
    CUTLASS_PRAGMA_UNROLL
    for (int j = 0; j < kChains; ++j) acc[j] = s(r, j);
    CUTLASS_PRAGMA_UNROLL
    for (int c = kChains; c < kCols; c += kChains) {
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < kChains; ++j) acc[j] = op(acc[j], s(r, c + j));
    }
    return combine_chains(acc, op);
  }

  // The kChains partial results of one row, combined pairwise.
  template <class T, class Op>
  CUTLASS_DEVICE static T combine_chains(T (&acc)[kChains], Op op) {
    CUTLASS_PRAGMA_UNROLL
    for (int width = kChains / 2; width >= 1; width /= 2) {
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < width; ++j) acc[j] = op(acc[j], acc[j + width]);
    }
    return acc[0];
  }

  // Row r's reference max becomes max(old, m) (scaled tile max m): its row sum is rescaled, and
  // o_scale = that change times unit_change. Returns what exp2's argument subtracts.
  CUTLASS_DEVICE float new_reference(int r, float m, float unit_change, float& o_scale) {
    float ref = fmaxf(row_max[r], m);
    // A row with every key masked so far keeps max -inf; subtract 0 so exp2 gives 0, not NaN.
    float max_change = exp2f(row_max[r] - (ref == -INFINITY ? 0.f : ref));  // exp2(-inf) = 0 on the first tile
    row_sum[r] *= max_change;
    o_scale = max_change * unit_change;
    row_max[r] = ref;
    return (ref == -INFINITY ? 0.f : ref) - kPShift;
  }

  // Whether the exponential of accumulator value i runs on the FMA pipe (kFmaExp2Every).
  CUTLASS_DEVICE static constexpr bool use_fma_exp2(int i) {
    if constexpr (kFmaExp2Every > 0) return i % kFmaExp2Every == kFmaExp2Every - 1;
    else return false;
  }

  // FP8, over the 4-value groups of the PV operand's registers (fp8_word_acc; group w holds row
  // w % 2), row by row in kChains chains: P = exp2(acc * scale_log2 - m_shifted) in place of acc,
  // and the rows' sums of P. Every kFmaExp2Every-th exponential runs on the FMA pipe
  // (exp2_on_fma), off MUFU.EX2, whose 16 per clock per SM bound the softmax.
  template <int kWords>
  CUTLASS_DEVICE static void exp_pass(float* acc, float const (&m_shifted)[kRows], float scale_log2,
                                      float (&sum)[kRows]) {
    static_assert(kWords >= kRows * kChains, "every chain takes at least one register");
    float sum_c[kRows][kChains];
    CUTLASS_PRAGMA_UNROLL
    for (int w = 0; w < kWords; ++w) {
      int const row = w % kRows, chain = (w / kRows) % kChains, first = fp8_word_acc(w);
      int const idx[4] = {first, first + 1, first + 4, first + 5};
      float e[4];
      CUTLASS_PRAGMA_UNROLL
      for (int q = 0; q < 4; ++q) {
        float x = fmaf(acc[idx[q]], scale_log2, -m_shifted[row]);
        e[q] = use_fma_exp2(idx[q]) ? exp2_on_fma(x) : exp2f(x);
        acc[idx[q]] = e[q];
      }
      float s4 = (e[0] + e[1]) + (e[2] + e[3]);
      sum_c[row][chain] = w < kRows * kChains ? s4 : sum_c[row][chain] + s4;
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) sum[r] = combine_chains(sum_c[r], [](float a, float b) { return a + b; });
  }

  // FP8: the rows' maxima of S, scaled (the quads' maxima, over the same registers and chains as
  // exp_pass). First taken on the fp32 bits as signed integers, with the DPX three-way maximum
  // (VIMNMX3: two new values per instruction, where FMNMX takes one): for values >= +0 the
  // integer order is the float order, and every such value is above every negative one, so the
  // integer maximum is the float maximum wherever this thread's part of the row holds a value >=
  // +0 (a NaN with the sign clear wins it, as it then wins the exponentials: P, O and the LSE are
  // NaN either way). Where some thread's part of a row is all negative (or -inf, masked), the
  // integer maximum is the row's minimum instead; that warp takes the maxima again with FMNMX (a
  // warp-uniform branch, rare: S has both signs). Masked tiles (kBitsMax false) go by FMNMX only.
  // Head dim 128: ~40 fewer instructions per key tile and warp, +1.5-4% (..._ab_fp8_bits_max.txt).
  template <int kWords, bool kBitsMax>
  CUTLASS_DEVICE static void row_maxima(float const* acc, float scale_log2, float (&m)[kRows]) {
    int bits_max[kRows];
    if constexpr (kBitsMax) thread_max_bits<kWords>(acc, bits_max);
    if (!kBitsMax || __any_sync(0xffffffff, (bits_max[0] | bits_max[kRows - 1]) < 0)) {
      thread_max_float<kWords>(acc, m);
    } else {
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) m[r] = __int_as_float(bits_max[r]);
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = quad_max(m[r]) * scale_log2;
  }

  // This thread's part of each row's maximum, on the bits as signed integers (row_maxima): per
  // 4-value group two VIMNMX3, the second into the group's chain.
  template <int kWords>
  CUTLASS_DEVICE static void thread_max_bits(float const* acc, int (&bits_max)[kRows]) {
    static_assert(kWords >= kRows * kChains, "every chain takes at least one register");
    int max_c[kRows][kChains];
    CUTLASS_PRAGMA_UNROLL
    for (int w = 0; w < kWords; ++w) {
      int const row = w % kRows, chain = (w / kRows) % kChains, first = fp8_word_acc(w);
      int const* b = reinterpret_cast<int const*>(acc);
      int const m3 = __vimax3_s32(b[first], b[first + 1], b[first + 4]);
      max_c[row][chain] = w < kRows * kChains ? max(m3, b[first + 5]) : __vimax3_s32(max_c[row][chain], m3, b[first + 5]);
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) bits_max[r] = combine_chains(max_c[r], [](int a, int b) { return max(a, b); });
  }

  // This thread's part of each row's maximum, in fp32 (FMNMX; NaN loses).
  template <int kWords>
  CUTLASS_DEVICE static void thread_max_float(float const* acc, float (&m)[kRows]) {
    float max_c[kRows][kChains];
    CUTLASS_PRAGMA_UNROLL
    for (int w = 0; w < kWords; ++w) {
      int const row = w % kRows, chain = (w / kRows) % kChains, first = fp8_word_acc(w);
      float m4 = fmaxf(fmaxf(acc[first], acc[first + 1]), fmaxf(acc[first + 4], acc[first + 5]));
      max_c[row][chain] = w < kRows * kChains ? m4 : fmaxf(max_c[row][chain], m4);
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = combine_chains(max_c[r], [](float a, float b) { return fmaxf(a, b); });
  }

  // Final per-row factor for O (1/sum, times O's unit for FP8; 0 for a row that saw no key, so
  // O = 0) and the LSE (natural log; -inf for such a row). A NaN score makes the sum NaN, and
  // with it O and the LSE.
  CUTLASS_DEVICE void finalize(float (&o_scale)[kRows], float (&lse)[kRows]) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float sum = quad_sum(row_sum[r]);
      bool empty = sum == 0.f;
      if constexpr (kFp8) {
        o_scale[r] = empty ? 0.f : o_unit / sum;
      } else {
        o_scale[r] = empty ? 0.f : 1.f / sum;
      }
      lse[r] = empty ? -INFINITY : (row_max[r] + log2f(sum) - kPShift) * float(M_LN2);
    }
  }
};

// Multiply each row of an accumulator (viewed (rows, cols)) by its factor.
template <class Acc, int kRows>
CUTLASS_DEVICE void scale_rows(Acc& acc, float const (&factor)[kRows]) {
  CUTLASS_PRAGMA_UNROLL
  for (int r = 0; r < kRows; ++r) {
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < cute::size<1>(acc); ++c) acc(r, c) *= factor[r];
  }
}

}  // namespace fa3
