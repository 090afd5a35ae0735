// Online softmax over key tiles, in registers. Scores arrive raw (unscaled); the tile's scale
// (softmax scale * log2(e), times the Q and K descales for FP8) is folded into one FFMA before
// exp2, and the row maxima are kept in that scaled (log2) domain, so the scale may change from
// tile to tile. Each thread owns kRows rows of the tile; the four lanes of a quad share a row,
// so maxima are reduced across the quad every tile and the row sums (kept per thread) once at
// the end. Scales must be >= 0 (the maximum of raw scores is then that of scaled ones).
//
// FP8 (kFp8) adds three things:
// - P is computed as exp2(... + 8), up to 2^8.8, to use e4m3's range (max 448 = 2^8.807) above
//   its subnormals; the row sums carry the same factor, so O / sum is unchanged; the LSE takes
//   it out.
// - Lazy rescaling. O's rescale (one FMUL per accumulator register) sits between a warpgroup's
//   two GEMM issues, on the pingpong's critical path, and is almost always a multiplication by 1
//   once the first tiles have set the row maxima. So the reference max that P is taken against
//   moves only when some row of the warp sees a tile max above its reference by more than
//   kMaxSlack; step() then returns true and O must be rescaled, else O is left alone (a
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

template <int kRows, bool kFp8 = false, int kChains = 1, int kFmaExp2Every = 0>
struct OnlineSoftmax {
  static constexpr float kPShift = kFp8 ? 8.f : 0.f;  // log2 of P's extra factor
  static constexpr bool kLazyRescale = kFp8;
  // P <= 2^kPShift * 2^kMaxSlack * kUnitFoldMax = 2^8.8 stays below e4m3's 448 = 2^8.807.
  static constexpr float kMaxSlack = 0.5f;
  static constexpr float kUnitFoldMax = 1.2311444f;  // 2^0.3, rounded down
  float row_max[kRows];  // reference max of scaled scores (log2 domain; -inf: no key seen yet)
  float row_sum[kRows];  // this thread's part of sum exp2(scaled score - row_max + kPShift)
  float o_unit;          // FP8: the V descale O is currently counted in (1 before any tile)

  CUTLASS_DEVICE OnlineSoftmax() : o_unit(1.f) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.f;
    }
  }

  // Turns the (rows, cols) raw scores into probabilities relative to the reference max, with
  // scores scaled by `scale_log2`; FP8: P V8 of this tile is then in units of o_unit, given the
  // tile's V descale. Returns whether O must be rescaled, by o_scale, before it takes in this
  // tile (always for 16-bit; FP8: warp-uniform, see the top of the file); o_scale is set only
  // then.
  //
  // The row max and row sum are reductions over this thread's cols scores; as one running value
  // they would be chains of dependent FMNMX / FADD (40 long at head dim 64 FP8), whose latency
  // the few warps per scheduler cannot hide. So each row keeps kChains independent partial
  // results (FwdKernelTraits::kSoftmaxChains), combined at the end, and all rows are reduced
  // side by side (and their quad shuffles issued together).
  template <class Scores>
  CUTLASS_DEVICE bool step(Scores& s, float (&o_scale)[kRows], float scale_log2, float v_descale = 1.f) {
    static_assert(decltype(cute::size<0>(s))::value == kRows);
    constexpr int kCols = decltype(cute::size<1>(s))::value;
    float m[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = partial_reduce(s, r, [](float a, float b) { return fmaxf(a, b); });
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = quad_max(m[r]) * scale_log2;
    bool rescale = true;
    float unit_change = 1.f;  // FP8: O's factor for a change of units (with a rescale)
    float p_offset = 0.f;  // FP8: log2 of the V-unit ratio folded into this tile's P
    float sum_factor = 1.f;  // and its inverse, applied to the tile's row sums
    if constexpr (kLazyRescale) {
      bool zero_block = v_descale == FLT_MIN;
      // descales are < 2^126: the fast division is exact enough. NaN fails the range test.
      float ratio = zero_block ? 1.f : __fdividef(v_descale, o_unit);
      bool fold = ratio >= 0.5f && ratio <= kUnitFoldMax;
      bool moved = false;
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) moved |= m[r] > row_max[r] + kMaxSlack;  // false for -inf and NaN
      rescale = __any_sync(0xffffffff, moved || !fold);
      if (rescale) {
        if (!zero_block) {
          unit_change = __fdividef(o_unit, v_descale);
          o_unit = v_descale;
        }
      } else if (ratio != 1.f) {
        p_offset = __log2f(ratio);
        sum_factor = __fdividef(1.f, ratio);
      }
    }
    float m_shifted[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float ref = row_max[r];
      if (rescale) {
        ref = fmaxf(row_max[r], m[r]);
        // A row with every key masked so far keeps max -inf; subtract 0 so exp2 gives 0, not NaN.
        float max_change = exp2f(row_max[r] - (ref == -INFINITY ? 0.f : ref));  // exp2(-inf) = 0 on the first tile
        row_sum[r] *= max_change;
        o_scale[r] = max_change * unit_change;
        row_max[r] = ref;
      }
      m_shifted[r] = (ref == -INFINITY ? 0.f : ref) - kPShift - p_offset;
    }
    CUTLASS_PRAGMA_UNROLL
    for (int c = 0; c < kCols; ++c) {
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) {
        float x = fmaf(s(r, c), scale_log2, -m_shifted[r]);
        // Every kFmaExp2Every-th column off MUFU.EX2, whose 16 per clock per SM bound the
        // softmax when the GEMMs are short (FP8).
        s(r, c) = kFmaExp2Every > 0 && c % kFmaExp2Every == kFmaExp2Every - 1 ? exp2_on_fma(x) : exp2f(x);
      }
    }
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float tile_sum = partial_reduce(s, r, [](float a, float b) { return a + b; });
      row_sum[r] = kLazyRescale ? fmaf(tile_sum, sum_factor, row_sum[r]) : row_sum[r] + tile_sum;
    }
    return rescale;
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
    CUTLASS_PRAGMA_UNROLL
    for (int width = kChains / 2; width >= 1; width /= 2) {
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < width; ++j) acc[j] = op(acc[j], acc[j + width]);
    }
    return acc[0];
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
