// Forward epilogue: normalize O by the softmax row sums (FP8: and take it out of V-descale units),
// convert it to the output type, stage it in shared memory (stmatrix, swizzled) and write it with
// one TMA store; the LSE (fp32) goes straight from registers.
// O's staging buffer is the V stage of the tile's last PV GEMM (the only smem no one else may
// be filling at this point: the producer is already loading the next tile's Q, K and first V
// into the other buffers). That stage is released to the producer here, once the TMA store
// has read it, instead of by the mainloop. The TMA store clips the rows past seqlen_q.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

#include "barrier_utils.hpp"
#include "flash_params.h"
#include "gmem_tensors.hpp"
#include "named_barriers.h"
#include "softmax.hpp"
#include "wgmma_utils.hpp"

namespace fa3 {

template <class Traits>
struct EpilogueFwdSm90 {
  using Element = typename Traits::OutElement;
  using TileShape = typename Traits::TileShape;
  using SmemLayoutO = typename Traits::SmemLayoutO;
  static constexpr int kBlockM = Traits::kBlockM;
  static constexpr int kConsumerThreads = Traits::kConsumerThreads;
  static constexpr int kSmemBytes = int(cute::cosize_v<SmemLayoutO> * sizeof(Element));

  using TmaO = decltype(cute::make_tma_copy(cute::SM90_TMA_STORE{}, GmemTensor<Element>{}, SmemLayoutO{},
                                            cute::select<0, 2>(TileShape{}), cute::_1{}));

  struct Params {
    TmaO tma_o;
    GmemShape shape_o;
    float* lse;  // (batch, nheads, seqlen_q), contiguous
    int seqlen_q;
    int nheads;
  };

  static Params to_underlying_arguments(FwdParams const& p) {
    GmemShape shape_o = gmem_shape(p, p.seqlen_q, p.nheads);
    auto o = gmem_tensor(static_cast<Element*>(p.o), shape_o, p.o_stride);
    auto tma_o = cute::make_tma_copy(cute::SM90_TMA_STORE{}, o, SmemLayoutO{}, cute::select<0, 2>(TileShape{}),
                                     cute::_1{});
    return {tma_o, shape_o, p.lse, p.seqlen_q, p.nheads};
  }

  CUTLASS_DEVICE static void prefetch_tma_descriptors(Params const& params) {
    cute::prefetch_tma_descriptor(params.tma_o.get_tma_descriptor());
  }

  // smem_o: kSmemBytes of shared memory (1024-byte aligned) that no one reads or writes once every
  // consumer's last PV GEMM is done. stage_empty: the empty barrier of the pipeline stage that
  // holds smem_o, released here for all consumer threads (nullptr: nothing to release).
  template <class FragO, class Softmax>
  CUTLASS_DEVICE void store(Params const& params, FragO& tOrO, Softmax& softmax, int thread_idx, int m_block,
                            int bidh, int bidb, char* smem_o, uint64_t* stage_empty) const {
    using namespace cute;
    Tensor o_rows = make_tensor(tOrO.data(), acc_rowcol(tOrO.layout()));
    constexpr int kRows = decltype(size<0>(o_rows))::value;
    float o_scale[kRows], lse[kRows];
    softmax.finalize(o_scale, lse);
    scale_rows(o_rows, o_scale);
    Tensor rO = make_tensor_like<Element>(tOrO);
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < size(rO); ++i) rO(i) = static_cast<Element>(tOrO(i));

    typename Traits::TiledMmaPV mma_pv;
    int rows_left = params.seqlen_q - m_block * kBlockM;
    // The 4 lanes of a quad hold the same rows; the first writes their LSE.
    if (thread_idx % 4 == 0) {
      Tensor tOcO = mma_pv.get_thread_slice(thread_idx).partition_C(make_identity_tensor(select<0, 2>(TileShape{})));
      Tensor row_coords = make_tensor(tOcO.data(), acc_rowcol(tOcO.layout()));
      float* lse_head = params.lse + (int64_t(bidb) * params.nheads + bidh) * params.seqlen_q;
      CUTLASS_PRAGMA_UNROLL
      for (int r = 0; r < kRows; ++r) {
        int row = int(get<0>(row_coords(r, 0)));
        if (row < rows_left) lse_head[m_block * kBlockM + row] = lse[r];
      }
    }

    // Every consumer's last PV GEMM has read the buffer before anyone overwrites it with O.
    sync_consumers();
    Tensor sO = make_tensor(make_smem_ptr(reinterpret_cast<Element*>(smem_o)), SmemLayoutO{});
    auto copy_o = make_tiled_copy_C(Copy_Atom<SM90_U32x4_STSM_N, Element>{}, mma_pv);
    auto thr_copy_o = copy_o.get_thread_slice(thread_idx);
    copy(copy_o, thr_copy_o.retile_S(rO), thr_copy_o.partition_D(sO));
    cutlass::arch::fence_view_async_shared();  // make the writes visible to the TMA (async proxy)
    sync_consumers();

    if (thread_idx == 0) {
      Tensor mO = params.tma_o.get_tma_tensor(params.shape_o);
      Tensor gO = local_tile(mO(_, _, bidh, bidb), select<0, 2>(TileShape{}), make_coord(m_block, _0{}));
      auto [tOgO, tOsO] = tma_partition(params.tma_o, _0{}, Layout<_1>{}, group_modes<0, 2>(sO), group_modes<0, 2>(gO));
      copy(params.tma_o, tOsO, tOgO);
      tma_store_arrive();
      tma_store_wait<0>();  // the store has read smem_o: the producer may refill it
      if (stage_empty != nullptr) arrive_on_empty_barrier(stage_empty, kConsumerThreads);
    }
  }

 private:
  CUTLASS_DEVICE static void sync_consumers() {
    cutlass::arch::NamedBarrier::sync(kConsumerThreads, int(FwdNamedBarrier::kEpilogue));
  }
};

}  // namespace fa3
