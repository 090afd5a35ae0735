// Backward epilogue: dK (times the softmax scale) and dV of a CTA's key tile, from the consumer
// registers to global memory in the input type. Each thread stores pairs of adjacent head-dim
// columns; rows past seqlen_k are not stored. A key tile that no query sees stores zeros.
#pragma once

#include <cute/tensor.hpp>

#include "flash_bwd_params.h"

namespace fa3 {

template <class Traits>
struct EpilogueBwdSm90 {
  using Element = typename Traits::Element;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kHeadDim = Traits::kHeadDim;

  struct Params {
    Element* dk;
    Element* dv;
    Strides3 dk_stride, dv_stride;
    int seqlen_k;
    float softmax_scale;
  };

  static Params to_underlying_arguments(BwdParams const& p) {
    return {static_cast<Element*>(p.dk), static_cast<Element*>(p.dv), p.dk_stride, p.dv_stride, p.seqlen_k,
            p.softmax_scale};
  }

  template <class FragKV>
  CUTLASS_DEVICE void store(Params const& params, FragKV const& tdKrdK, FragKV const& tdVrdV, int thread_idx,
                            int n_block, int bidh_kv, int bidb) const {
    using namespace cute;
    typename Traits::TiledMmaDKV mma_dkv;
    auto thr = mma_dkv.get_thread_slice(thread_idx);
    Tensor coords = thr.partition_C(make_identity_tensor(Shape<Int<kBlockN>, Int<kHeadDim>>{}));
    auto write = [&](FragKV const& acc, Element* base, Strides3 const& s, float scale) {
      Element* tile = base + bidb * s.batch + bidh_kv * s.head + int64_t(n_block) * kBlockN * s.row;
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(acc); i += 2) {  // values i, i + 1: adjacent columns of one row
        int const row = int(get<0>(coords(i)));
        int const col = int(get<1>(coords(i)));
        if (n_block * kBlockN + row < params.seqlen_k) {
          Element pair[2] = {static_cast<Element>(acc(i) * scale), static_cast<Element>(acc(i + 1) * scale)};
          *reinterpret_cast<uint32_t*>(tile + row * s.row + col) = *reinterpret_cast<uint32_t const*>(pair);
        }
      }
    };
    write(tdKrdK, params.dk, params.dk_stride, params.softmax_scale);
    write(tdVrdV, params.dv, params.dv_stride, 1.f);
  }
};

}  // namespace fa3
