// Compile-time description of the backward kernel (fp16/bf16): tile, warp roles and register
// budgets, shared-memory layouts and the five WGMMA tilings. The GEMMs are arranged so that
// the keys are the M dimension wherever the result stays with the keys (FlashAttention-3's
// "swapped" S and dP): each consumer warpgroup owns 64 of the CTA's keys, computes S^T and dP^T
// for them, and feeds P^T and dS^T straight from its registers into dV += P^T dO and
// dK += dS^T Q. Only dQ = dS K needs all keys of the tile: dS^T goes through shared memory and
// the two warpgroups split dQ (its rows, its columns, or transposed: see TiledMmaDQ).
#pragma once

#include <type_traits>

#include <cute/tensor.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>

namespace fa3 {

template <typename Element_, int kHeadDim_, int kBlockM_, int kBlockN_>
struct BwdKernelTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;  // query rows per step
  static constexpr int kBlockN = kBlockN_;  // resident keys
  static constexpr int kStages = 2;         // Q (with its LSE) and dO (with D) are double-buffered
  static constexpr int kConsumerWarpGroups = kBlockN / 64;
  static_assert(kConsumerWarpGroups == 2, "two consumer warpgroups of 64 keys");
  static constexpr int kConsumerThreads = kConsumerWarpGroups * 128;
  static constexpr int kThreads = kConsumerThreads + 128;
  static constexpr int kProducerRegs = 24;
  static constexpr int kConsumerRegs = 240;  // 24*128 + 240*256 = 64512 <= 65536
  // dQ_partial reaches the fp32 accumulator as vector reductions straight from the consumers'
  // registers (red.global.add.v4.f32), or through shared memory and the writer warp's bulk
  // reductions (always in deterministic mode). Main kernel at 16k, shared memory vs registers:
  // 8.76 vs 8.60 ms at head dim 128, 11.74 vs 12.19 ms at head dim 64.
  static constexpr bool kDqFromRegisters = kHeadDim > 64;

  using Int_M = cute::Int<kBlockM>;
  using Int_N = cute::Int<kBlockN>;
  using Int_D = cute::Int<kHeadDim>;
  using KeysSplit = cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>;     // M across warpgroups (keys; dQ: rows or, transposed, head dim)
  using ColumnsSplit = cute::Layout<cute::Shape<cute::_1, cute::_2, cute::_1>>;  // N (head dim) across them

  // S^T = K Q^T and dP^T = V dO^T: (keys, queries, head dim), both operands K-major in smem.
  using TiledMmaSdP = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<Element, Element, float, cute::Shape<cute::_64, Int_M, Int_D>>(), KeysSplit{}));
  // dV += P^T dO and dK += dS^T Q: (keys, head dim, queries); A from registers, B = dO or Q read
  // with the head dim contiguous (MN-major).
  using TiledMmaDKV = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<Element, Element, float, cute::Shape<cute::_64, Int_D, Int_M>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
      KeysSplit{}));
  // dQ = dS K: (queries, head dim, keys); dS K-major in smem, K read with the head dim contiguous.
  // How the two warpgroups split it: 128-row tiles by rows (64 each, the whole head dim:
  // FlashAttention-3's head dim 64 tiling; by columns, each warpgroup's GEMM is 2 x m64n32 that
  // reads K twice: head dim 64 at 16k 497.5 vs 500.1 TFLOP/s); 64-row tiles by columns; a tile that is no multiple
  // of WGMMA's M (80 rows) takes it transposed, dQ^T = K^T dS^T: (head dim, queries, keys), the
  // head dim split.
  static constexpr bool kDqTransposed = kBlockM % 64 != 0;
  static constexpr bool kDqRowsSplit = kBlockM >= 128;
  static constexpr auto make_mma_dq() {  // (only the chosen tiling is instantiated)
    if constexpr (kDqTransposed) {
      return cute::make_tiled_mma(
          cute::GMMA::ss_op_selector<Element, Element, float, cute::Shape<cute::_64, Int_M, Int_N>,
                                     cute::GMMA::Major::MN, cute::GMMA::Major::K>(),
          KeysSplit{});
    } else if constexpr (kDqRowsSplit) {
      return cute::make_tiled_mma(
          cute::GMMA::ss_op_selector<Element, Element, float, cute::Shape<cute::Int<kBlockM / 2>, Int_D, Int_N>,
                                     cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
          KeysSplit{});
    } else {
      return cute::make_tiled_mma(
          cute::GMMA::ss_op_selector<Element, Element, float, cute::Shape<Int_M, cute::Int<kHeadDim / 2>, Int_N>,
                                     cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
          ColumnsSplit{});
    }
  }
  using TiledMmaDQ = decltype(make_mma_dq());
  // dQ's accumulator tile in TiledMmaDQ's (M, N) order.
  using DqTile = std::conditional_t<kDqTransposed, cute::Shape<Int_D, Int_M>, cute::Shape<Int_M, Int_D>>;

  // (rows, head dim) tiles, head dim contiguous: K and V (kBlockN rows), Q and dO (kBlockM rows,
  // kStages buffers).
  using SmemLayoutAtomKV = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                    cute::GMMA::Major::K, Element, Int_N, Int_D>());
  using SmemLayoutKV = decltype(cute::tile_to_shape(SmemLayoutAtomKV{}, cute::make_shape(Int_N{}, Int_D{})));
  using SmemLayoutAtomQ = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                   cute::GMMA::Major::K, Element, Int_M, Int_D>());
  using SmemLayoutQ = decltype(cute::tile_to_shape(
      SmemLayoutAtomQ{}, cute::make_shape(Int_M{}, Int_D{}, cute::Int<kStages>{})));
  // The same bytes read as (head dim, rows): B of the GEMMs whose K dimension is the rows.
  using SmemLayoutQt = decltype(cute::composition(
      SmemLayoutQ{}, cute::make_ordered_layout(cute::make_shape(Int_D{}, Int_M{}, cute::Int<kStages>{}),
                                               cute::Step<cute::_2, cute::_1, cute::_3>{})));
  using SmemLayoutKt = decltype(cute::composition(
      SmemLayoutKV{}, cute::make_ordered_layout(cute::make_shape(Int_D{}, Int_N{}), cute::Step<cute::_2, cute::_1>{})));
  // dS (queries, keys), keys contiguous, two buffers (a warpgroup may write the next step's
  // while the other still reads this one); dS^T is the (keys, queries) view the consumers write.
  using SmemLayoutAtomDS = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                    cute::GMMA::Major::K, Element, Int_M, Int_N>());
  using SmemLayoutDS = decltype(cute::tile_to_shape(SmemLayoutAtomDS{}, cute::make_shape(Int_M{}, Int_N{}, cute::_2{})));
  using SmemLayoutDSt = decltype(cute::composition(
      SmemLayoutDS{}, cute::make_ordered_layout(cute::make_shape(Int_N{}, Int_M{}, cute::_2{}),
                                                cute::Step<cute::_2, cute::_1, cute::_3>{})));
};

}  // namespace fa3
