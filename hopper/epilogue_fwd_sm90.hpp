// Forward epilogue: normalize O by the softmax row sums and write O (input precision) and the
// LSE (fp32) straight from registers, predicated on seqlen_q for the last query tile.
#pragma once

#include <cute/tensor.hpp>

#include "flash_params.h"
#include "softmax.hpp"
#include "wgmma_utils.hpp"

namespace fa3 {

template <class Traits>
struct EpilogueFwdSm90 {
  using Element = typename Traits::Element;
  using TileShape = typename Traits::TileShape;
  static constexpr int kBlockM = Traits::kBlockM;

  struct Params {
    Element* o;
    float* lse;  // (batch, nheads, seqlen_q), contiguous
    Strides3 o_stride;
    int seqlen_q;
    int headdim;
    int nheads;
  };

  static Params to_underlying_arguments(FwdParams const& p) {
    return {static_cast<Element*>(p.o), p.lse, p.o_stride, p.seqlen_q, p.headdim, p.nheads};
  }

  template <class FragO, class Softmax>
  CUTLASS_DEVICE void store(Params const& params, FragO& tOrO, Softmax& softmax, int thread_idx, int m_block,
                            int bidh, int bidb) const {
    using namespace cute;
    Tensor o_rows = make_tensor(tOrO.data(), acc_rowcol(tOrO.layout()));
    constexpr int kRows = decltype(size<0>(o_rows))::value;
    float o_scale[kRows], lse[kRows];
    softmax.finalize(o_scale, lse);
    scale_rows(o_rows, o_scale);

    typename Traits::TiledMmaPV mma_pv;
    auto thr_pv = mma_pv.get_thread_slice(thread_idx);
    Element* o_head = params.o + bidb * params.o_stride.batch + bidh * params.o_stride.head;
    Tensor mO = make_tensor(make_gmem_ptr(o_head), make_shape(params.seqlen_q, params.headdim),
                            make_stride(params.o_stride.row, _1{}));  // this (batch, head)'s O
    Tensor gO = local_tile(mO, select<0, 2>(TileShape{}), make_coord(m_block, _0{}));
    Tensor tOgO = thr_pv.partition_C(gO);
    Tensor tOcO = thr_pv.partition_C(make_identity_tensor(select<0, 2>(TileShape{})));
    int rows_left = params.seqlen_q - m_block * kBlockM;
    // An accumulator's values come in pairs of adjacent columns: store each pair as one 4-byte
    // word (run_fwd checks that o is 16-byte aligned with strides in multiples of 16 bytes).
    static_assert(decltype(size<0, 0>(tOgO))::value == 2 && decltype(stride<0, 0>(tOgO))::value == 1);
    using Pair = cutlass::Array<Element, 2>;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < size(tOrO); i += 2) {
      if (int(get<0>(tOcO(i))) < rows_left) {
        Pair pair;
        pair[0] = static_cast<Element>(tOrO(i));
        pair[1] = static_cast<Element>(tOrO(i + 1));
        *reinterpret_cast<Pair*>(&tOgO(i)) = pair;
      }
    }
    // The 4 lanes of a quad hold the same rows; the first writes their LSE.
    if (thread_idx % 4 == 0) {
      Tensor row_coords = make_tensor(tOcO.data(), acc_rowcol(tOcO.layout()));
      float* lse_head = params.lse + (int64_t(bidb) * params.nheads + bidh) * params.seqlen_q;
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) {
        int row = int(get<0>(row_coords(r, 0)));
        if (row < rows_left) lse_head[m_block * kBlockM + row] = lse[r];
      }
    }
  }
};

}  // namespace fa3
