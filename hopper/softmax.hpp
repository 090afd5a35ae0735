// Online softmax over key tiles, in registers. Scores arrive raw (unscaled); the tile's scale
// (softmax scale * log2(e), times the Q and K descales for FP8) is folded into one FFMA before
// exp2, and the running row maxima are kept in that scaled (log2) domain, so the scale may change
// from tile to tile. Each thread owns kRows rows of the tile; the four lanes of a quad share a
// row, so maxima are reduced across the quad every tile and the row sums (kept per thread) once
// at the end. Scales must be >= 0 (the maximum of raw scores is then that of scaled ones).
//
// FP8 (kFp8) adds two things:
// - P is computed as exp2(... + 8), in (0, 256], to use e4m3's range above its subnormals; the
//   row sums carry the same factor, so O / sum is unchanged; the LSE takes it out.
// - O is accumulated in units of the V descale of the last key tile it took in (the PV GEMM
//   adds P V8 with no scale). When the next tile's V descale differs, the O rescale factor
//   o_scale carries the change of units too; the epilogue multiplies O by the last unit. A tile
//   at the floor descale (FLT_MIN) is all zeros (quant/e4m3.py) and keeps the current unit, so an
//   all-zero V block cannot blow O up by 1 / FLT_MIN.
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
  float row_max[kRows];  // running max of scaled scores (log2 domain; -inf: no key seen yet)
  float row_sum[kRows];  // this thread's part of sum exp2(scaled score - row_max + kPShift)
  float o_unit;          // FP8: the V descale O is currently counted in (1 before any tile)

  CUTLASS_DEVICE OnlineSoftmax() : o_unit(1.f) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.f;
    }
  }

  // Turns the (rows, cols) raw scores into probabilities relative to the new running max, with
  // scores scaled by `scale_log2`, and returns in o_scale the factor by which each row's O
  // accumulator must be rescaled.
  //
  // The row max and row sum are reductions over this thread's cols scores; as one running value
  // they would be chains of dependent FMNMX / FADD (40 long at head dim 64 FP8), whose latency
  // the few warps per scheduler cannot hide. So each row keeps kChains independent partial
  // results (FwdKernelTraits::kSoftmaxChains), combined at the end, and all rows are reduced
  // side by side (and their quad shuffles issued together).
  template <class Scores>
  CUTLASS_DEVICE void step(Scores& s, float (&o_scale)[kRows], float scale_log2) {
    static_assert(decltype(cute::size<0>(s))::value == kRows);
    constexpr int kCols = decltype(cute::size<1>(s))::value;
    float m[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = partial_reduce(s, r, [](float a, float b) { return fmaxf(a, b); });
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) m[r] = quad_max(m[r]);
    float m_shifted[kRows];
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float new_max = fmaxf(row_max[r], m[r] * scale_log2);
      // A row with every key masked so far keeps max -inf; subtract 0 so exp2 gives 0, not NaN.
      float finite_max = new_max == -INFINITY ? 0.f : new_max;
      m_shifted[r] = finite_max - kPShift;
      o_scale[r] = exp2f(row_max[r] - finite_max);  // exp2(-inf) = 0 on the first tile
      row_max[r] = new_max;
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
      row_sum[r] = row_sum[r] * o_scale[r] + partial_reduce(s, r, [](float a, float b) { return a + b; });
    }
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

  // FP8: O is about to take in a key tile whose V descale is v_descale; fold the change of units
  // into o_scale. Per-tensor and per-head descales never change units (no division at all); a
  // NaN descale makes O NaN.
  CUTLASS_DEVICE void change_units(float (&o_scale)[kRows], float v_descale) {
    static_assert(kFp8);
    if (v_descale == o_unit || v_descale == FLT_MIN) return;  // FLT_MIN: an all-zero V block adds 0
    float ratio = __fdividef(o_unit, v_descale);  // descales are < 2^126: the fast division is exact enough
    o_unit = v_descale;
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) o_scale[r] *= ratio;
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
