// Online softmax over key tiles, in registers. Scores arrive raw (unscaled); the scale and
// log2(e) are folded into one FFMA before exp2. Each thread owns kRows rows of the tile; the
// four lanes of a quad share a row, so maxima are reduced across the quad every tile and the
// row sums (kept per thread) once at the end.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "wgmma_utils.hpp"

namespace fa3 {

template <int kRows>
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
        s(r, c) = exp2f(fmaf(s(r, c), scale_log2, -m_scaled));
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
