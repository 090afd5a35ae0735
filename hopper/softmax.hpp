// Online softmax over key tiles, in registers. Scores arrive raw (unscaled); the scale and
// log2(e) are folded into one FFMA before exp2. Each thread owns kRows rows of the tile; the
// four lanes of a quad share a row, so maxima are reduced across the quad every tile and the
// row sums (kept per thread) once at the end. Optionally every kFmaExp2Every-th exponential of
// a row runs on the FMA pipe instead of the MUFU unit (exp2_on_fma).
#pragma once

#include <cmath>
#include <cstdint>

#include <cute/tensor.hpp>

#include "wgmma_utils.hpp"

namespace fa3 {

// 2^x for x <= 0 (or NaN) on the FMA pipe. MUFU.EX2 runs 16 per clock per SM; at head dim 64
// that is as long as the two GEMMs it should hide under, so a share of the exponentials is
// computed here instead. j = round(x) comes from adding 1.5 * 2^23 (j lands in the low mantissa
// bits), 2^(x - j) from a minimax polynomial on [-1/2, 1/2] (relative error 7.5e-5 at degree
// 3, 2.7e-6 at degree 4: under the rounding of P to bf16 / fp16), 2^j from j + 127 written
// into an exponent field. x is clamped at -127, where that field is 0, so a masked score
// (-inf) gives exactly 0 as MUFU does; the clamp keeps NaN (max.NaN), and NaN * 2^j is NaN.
template <int kDegree>
CUTLASS_DEVICE float exp2_on_fma(float x) {
  static_assert(kDegree == 3 || kDegree == 4);
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23
  float xc;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(xc) : "f"(x), "f"(-127.f));
  float t = __fadd_rn(xc, kRound);  // _rn intrinsics: never reassociated or contracted
  float f = __fadd_rn(xc, -__fadd_rn(t, -kRound));
  float p;
  if constexpr (kDegree == 3) {
    p = fmaf(fmaf(fmaf(0.05517132f, f, 0.24261054f), f, 0.69326097f), f, 0.99992812f);
  } else {
    p = fmaf(fmaf(fmaf(fmaf(0.00957007f, f, 0.05591781f), f, 0.24024744f), f, 0.69312185f), f, 0.99999928f);
  }
  uint32_t two_j = (__float_as_uint(t) << 23) + 0x3f800000u;  // (j + 127) << 23, mod 2^32
  return p * __uint_as_float(two_j);
}

// kFmaExp2Every: 0 = every exponential on MUFU; n = the n-th, 2n-th, ... of each row on the FMA
// pipe with a polynomial of degree kExp2Degree.
template <int kRows, int kFmaExp2Every = 0, int kExp2Degree = 3>
struct OnlineSoftmax {
  float row_max[kRows];  // running max of raw scores (-inf: no key seen yet)
  float row_sum[kRows];  // this thread's part of sum exp2(scale_log2 * (s - row_max))
  float scale_log2;

  CUTLASS_DEVICE explicit OnlineSoftmax(float scale_log2_) : scale_log2(scale_log2_) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.f;
    }
  }

  // Turns the (rows, cols) scores into probabilities relative to the new running max and
  // returns in o_scale the factor by which each row's O accumulator must be rescaled.
  template <class Scores>
  CUTLASS_DEVICE void step(Scores& s, float (&o_scale)[kRows]) {
    static_assert(decltype(cute::size<0>(s))::value == kRows);
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float m = row_max[r];
      CUTLASS_PRAGMA_UNROLL
      for (int c = 0; c < cute::size<1>(s); ++c) m = fmaxf(m, s(r, c));
      m = quad_max(m);
      // A row with every key masked so far keeps max -inf; subtract 0 so exp2 gives 0, not NaN.
      float m_scaled = m == -INFINITY ? 0.f : m * scale_log2;
      o_scale[r] = exp2f(row_max[r] * scale_log2 - m_scaled);  // exp2(-inf) = 0 on the first tile
      row_max[r] = m;
      float sum = 0.f;
      CUTLASS_PRAGMA_UNROLL
      for (int c = 0; c < cute::size<1>(s); ++c) {
        float x = fmaf(s(r, c), scale_log2, -m_scaled);
        s(r, c) = kFmaExp2Every > 0 && c % kFmaExp2Every == kFmaExp2Every - 1 ? exp2_on_fma<kExp2Degree>(x)
                                                                               : exp2f(x);
        sum += s(r, c);
      }
      row_sum[r] = row_sum[r] * o_scale[r] + sum;
    }
  }

  // Final per-row normalizer 1/sum (0 for a row that saw no key, so O = 0) and the LSE (natural
  // log; -inf for such a row). A NaN score makes the sum NaN, and with it O and the LSE.
  CUTLASS_DEVICE void finalize(float (&o_scale)[kRows], float (&lse)[kRows]) {
    CUTLASS_PRAGMA_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float sum = quad_sum(row_sum[r]);
      bool empty = sum == 0.f;
      o_scale[r] = empty ? 0.f : 1.f / sum;
      lse[r] = empty ? -INFINITY : (row_max[r] * scale_log2 + log2f(sum)) * float(M_LN2);
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
