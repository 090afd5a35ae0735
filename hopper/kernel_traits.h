// Compile-time description of one forward kernel: tile shape, warp roles and register budgets,
// shared-memory layouts of Q, K, V (and V^T as the second GEMM reads it), the two WGMMA tilings.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>

namespace fa3 {

template <typename Element_, int kHeadDim_, int kBlockM_, int kBlockN_, int kStages_>
struct FwdKernelTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kStages = kStages_;

  // Roles: warpgroup 0 produces (one thread issues TMA), warpgroups 1.. consume, 64 rows each.
  static constexpr int kConsumerWarpGroups = kBlockM / 64;
  static constexpr int kConsumerThreads = kConsumerWarpGroups * 128;
  static constexpr int kThreads = kConsumerThreads + 128;
  static_assert(kBlockM % 64 == 0 && kConsumerWarpGroups >= 1 && kConsumerWarpGroups <= 3);
  // setmaxnreg budgets: the producer needs few registers, consumers hold S, P and O.
  // 24*128 + 240*256 = 64512 <= 65536 registers per SM (2 consumers); 32 / 160 for 3.
  static constexpr int kProducerRegs = kConsumerWarpGroups == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumerWarpGroups == 2 ? 240 : 160;

  using TileShape = cute::Shape<cute::Int<kBlockM>, cute::Int<kBlockN>, cute::Int<kHeadDim>>;
  using AtomLayout = cute::Layout<cute::Shape<cute::Int<kConsumerWarpGroups>, cute::_1, cute::_1>>;
  // S = Q K^T: both operands from shared memory, K-major (head dim contiguous).
  using TiledMmaQK = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<Element, Element, float, TileShape>(), AtomLayout{}));
  // O += P V: P from registers, V^T from shared memory read MN-major (V's head dim is contiguous).
  using TiledMmaPV = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<Element, Element, float,
                                 cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>, cute::Int<kBlockN>>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
      AtomLayout{}));

  using SmemLayoutAtomQ = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                   cute::GMMA::Major::K, Element, cute::Int<kBlockM>, cute::Int<kHeadDim>>());
  using SmemLayoutQ = decltype(cute::tile_to_shape(SmemLayoutAtomQ{}, cute::select<0, 2>(TileShape{})));
  // O is staged for its TMA store in the same (kBlockM, head dim) swizzled layout as Q.
  using SmemLayoutO = SmemLayoutQ;
  using SmemLayoutAtomKV = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                    cute::GMMA::Major::K, Element, cute::Int<kBlockN>, cute::Int<kHeadDim>>());
  using SmemLayoutKV = decltype(cute::tile_to_shape(
      SmemLayoutAtomKV{}, cute::make_shape(cute::Int<kBlockN>{}, cute::Int<kHeadDim>{}, cute::Int<kStages>{})));
  // The same bytes as V, indexed (head dim, key, stage): the B operand of the PV GEMM.
  using SmemLayoutVt = decltype(cute::composition(
      SmemLayoutKV{}, cute::make_ordered_layout(
                          cute::make_shape(cute::Int<kHeadDim>{}, cute::Int<kBlockN>{}, cute::Int<kStages>{}),
                          cute::Step<cute::_2, cute::_1, cute::_3>{})));
};

}  // namespace fa3
