// Compile-time description of one forward kernel: tile shape, warp roles and register budgets,
// shared-memory layouts of Q, K, V (and V^T as the second GEMM reads it), the two WGMMA tilings.
// Element is the input type (fp16, bf16 or e4m3), OutElement that of O (fp16 or bf16).
//
// FP8 differs in V: e4m3 WGMMA reads both operands K-major, so the PV GEMM needs V^T with the
// keys contiguous. The quantization kernel writes V that way, (batch, heads, headdim, keys), with
// the keys relabeled inside every group of 16 (see fp8_p_operand in wgmma_utils.hpp), and the TMA
// loads (headdim, kBlockN) boxes of it: V's shared-memory buffer *is* V^T.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>

namespace fa3 {

template <typename Element_, typename OutElement_, int kHeadDim_, int kBlockM_, int kBlockN_, int kStages_,
          bool kQResidual_ = false>
struct FwdKernelTraits {
  using Element = Element_;
  using OutElement = OutElement_;
  static constexpr bool kFp8 = sizeof(Element) == 1;
  static_assert(kFp8 || cute::is_same_v<Element, OutElement>, "16-bit kernels write O in their input type");
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kStages = kStages_;
  // FP8: Q comes as two e4m3 terms (flash_params.h's q_residual), both in shared memory, and the
  // S GEMM runs over each against the same K tile.
  static constexpr bool kQResidual = kQResidual_;
  static_assert(!kQResidual || kFp8, "Q's second e4m3 term is for FP8 inputs");

  // Roles: warpgroup 0 produces (one thread issues TMA), warpgroups 1.. consume, 64 rows each.
  static constexpr int kConsumerWarpGroups = kBlockM / 64;
  static constexpr int kConsumerThreads = kConsumerWarpGroups * 128;
  static constexpr int kThreads = kConsumerThreads + 128;
  static_assert(kBlockM % 64 == 0 && kConsumerWarpGroups >= 1 && kConsumerWarpGroups <= 3);
  // setmaxnreg budgets: the producer needs few registers, consumers hold S, P and O.
  // 24*128 + 240*256 = 64512 <= 65536 registers per SM (2 consumers); 32 / 160 for 3.
  static constexpr int kProducerRegs = kConsumerWarpGroups == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumerWarpGroups == 2 ? 240 : 160;

  // Independent partial results per row in the softmax's max and sum reductions (softmax.hpp):
  // more chains hide more latency and cost registers. Four for FP8 at head dim 64 and 128, whose
  // GEMMs are too short to hide one long chain (one device A/B, FP8 kernel / cuDNN bf16, 16k:
  // hdim 64 543 -> 628 TFLOP/s (+17%; 2k +8%), hdim 128 836 -> 841, causal hdim 128 ratio 1.43 ->
  // 1.48; causal hdim 64 491 -> 459). One elsewhere: bf16 lost 3-5% at 2k with four (hdim 64
  // and 128) and gained 1-3% at 16k; at head dim 256 O and S fill the 240 registers (four
  // chains spilled 12 bytes in the FP8 causal kernel). Two with Q's second term (head dim 64,
  // three consumer warpgroups of 160 registers): its descriptors stay live in the loop, and four
  // chains spilled 12-20 bytes.
  static constexpr int kSoftmaxChains = kFp8 && kHeadDim <= 128 ? (kQResidual ? 2 : 4) : 1;

  using TileShape = cute::Shape<cute::Int<kBlockM>, cute::Int<kBlockN>, cute::Int<kHeadDim>>;
  using AtomLayout = cute::Layout<cute::Shape<cute::Int<kConsumerWarpGroups>, cute::_1, cute::_1>>;
  // S = Q K^T: both operands from shared memory, K-major (head dim contiguous).
  using TiledMmaQK = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<Element, Element, float, TileShape>(), AtomLayout{}));
  // O += P V: P from registers, V^T from shared memory, read MN-major (16-bit: V's head dim is
  // contiguous) or K-major (FP8: the keys are).
  static constexpr cute::GMMA::Major kMajorVt = kFp8 ? cute::GMMA::Major::K : cute::GMMA::Major::MN;
  using TiledMmaPV = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<Element, Element, float,
                                 cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>, cute::Int<kBlockN>>,
                                 cute::GMMA::Major::K, kMajorVt>(),
      AtomLayout{}));

  using SmemLayoutAtomQ = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                   cute::GMMA::Major::K, Element, cute::Int<kBlockM>, cute::Int<kHeadDim>>());
  using SmemLayoutQ = decltype(cute::tile_to_shape(SmemLayoutAtomQ{}, cute::select<0, 2>(TileShape{})));
  // O is staged for its TMA store in a (kBlockM, head dim) swizzled layout (Q's, when 16-bit).
  using SmemLayoutAtomO = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                   cute::GMMA::Major::K, OutElement, cute::Int<kBlockM>, cute::Int<kHeadDim>>());
  using SmemLayoutO = decltype(cute::tile_to_shape(SmemLayoutAtomO{}, cute::select<0, 2>(TileShape{})));
  using SmemLayoutAtomKV = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                    cute::GMMA::Major::K, Element, cute::Int<kBlockN>, cute::Int<kHeadDim>>());
  using SmemLayoutKV = decltype(cute::tile_to_shape(
      SmemLayoutAtomKV{}, cute::make_shape(cute::Int<kBlockN>{}, cute::Int<kHeadDim>{}, cute::Int<kStages>{})));
  // 16-bit: the same bytes as V, indexed (head dim, key, stage): the B operand of the PV GEMM.
  using SmemLayoutVtOfV = decltype(cute::composition(
      SmemLayoutKV{}, cute::make_ordered_layout(
                          cute::make_shape(cute::Int<kHeadDim>{}, cute::Int<kBlockN>{}, cute::Int<kStages>{}),
                          cute::Step<cute::_2, cute::_1, cute::_3>{})));
  // FP8: V^T as loaded, (head dim, key, stage) with the keys contiguous.
  using SmemLayoutAtomVtK = decltype(cutlass::gemm::collective::detail::ss_smem_selector<
                                     cute::GMMA::Major::K, Element, cute::Int<kHeadDim>, cute::Int<kBlockN>>());
  using SmemLayoutVtK = decltype(cute::tile_to_shape(
      SmemLayoutAtomVtK{}, cute::make_shape(cute::Int<kHeadDim>{}, cute::Int<kBlockN>{}, cute::Int<kStages>{})));
  using SmemLayoutVt = cute::conditional_t<kFp8, SmemLayoutVtK, SmemLayoutVtOfV>;
  // What the TMA writes into V's buffer: V (key, head dim) or, for FP8, V^T.
  using SmemLayoutV = cute::conditional_t<kFp8, SmemLayoutVtK, SmemLayoutKV>;
  static constexpr int kVStageBytes = int(cute::cosize_v<SmemLayoutV> / kStages * sizeof(Element));
};

}  // namespace fa3
