// Forward mainloop, split as a CUTLASS collective: the producer's TMA loads (Q once, K and V
// through a kStages-deep ring of shared-memory buffers, each guarded by a PipelineTmaAsync)
// and the consumers' math (S = Q K^T, mask, online softmax, O += P V) over the key tiles.
// Key tiles are visited from the last to the first, so the tiles that need a mask come first.
// Options (fwd_options.h) select pingpong between the consumer warpgroups and the overlap of
// each warpgroup's softmax with its own GEMMs. FP8 (Traits::kFp8) loads V^T (kernel_traits.h),
// scales each key tile's scores by its Q and K descales and counts O in V-descale units
// (softmax.hpp). With Traits::kQResidual, Q's second e4m3 term is loaded beside Q and the S GEMM
// runs over both against the same K tile, into one accumulator.
#pragma once

#include <type_traits>

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "flash_params.h"
#include "fwd_options.h"
#include "gmem_tensors.hpp"
#include "mask.hpp"
#include "named_barriers.h"
#include "softmax.hpp"
#include "wgmma_utils.hpp"

namespace fa3 {

template <class Traits, bool kCausal, class Options_>
struct MainloopFwdSm90 {
  using Options = Options_;
  static_assert(!Options::kPingpong || Traits::kConsumerWarpGroups == 2, "pingpong takes two consumer warpgroups");
  using Element = typename Traits::Element;
  static constexpr bool kFp8 = Traits::kFp8;
  static constexpr bool kQResidual = Traits::kQResidual;
  using TileShape = typename Traits::TileShape;
  static constexpr int kBlockM = Traits::kBlockM;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kStages = Traits::kStages;
  using SmemLayoutQ = typename Traits::SmemLayoutQ;
  using SmemLayoutKV = typename Traits::SmemLayoutKV;
  using SmemLayoutVt = typename Traits::SmemLayoutVt;
  using SmemLayoutV = typename Traits::SmemLayoutV;
  using Mask = FwdMask<kBlockM, kBlockN, kCausal>;
  // Every kFmaExp2Every-th exponential of the softmax on the FMA pipe instead of MUFU (0: none;
  // softmax.hpp). One device A/B (every 8th, FP8 kernel / cuDNN bf16, benchmarks/results
  // 2026-11-23_h100_ab_fma_exp2.txt): causal hdim 64 16k 469 -> 569 TFLOP/s (+24%), 2k +0%;
  // causal hdim 128 2k +6%, 16k +0%; but non-causal lost 6-14% (hdim 64 and 128). So: FP8,
  // causal, head dims 64 and 128.
  static constexpr int kFmaExp2Every = kFp8 && kCausal && Traits::kHeadDim <= 128 ? 8 : 0;
  // A V tile as the TMA loads it: (keys, head dim), or (head dim, keys) of V^T for FP8.
  using VTileShape = cute::conditional_t<kFp8, cute::Shape<cute::Int<Traits::kHeadDim>, cute::Int<kBlockN>>,
                                         cute::Shape<cute::Int<kBlockN>, cute::Int<Traits::kHeadDim>>>;

  using GmemTensorQKV = GmemTensor<Element const>;  // gmem_tensors.hpp
  using TmaQ = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensorQKV{}, SmemLayoutQ{},
                                            cute::select<0, 2>(TileShape{}), cute::_1{}));
  using TmaK = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensorQKV{},
                                            cute::take<0, 2>(SmemLayoutKV{}), cute::select<1, 2>(TileShape{}),
                                            cute::_1{}));
  using TmaV = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensorQKV{}, cute::take<0, 2>(SmemLayoutV{}),
                                            VTileShape{}, cute::_1{}));

  using Pipeline = cutlass::PipelineTmaAsync<kStages>;
  using PipelineState = cutlass::PipelineState<kStages>;
  // Q's barrier counts the bytes of Q and of its second term.
  static constexpr uint32_t kTmaBytesQ = cute::size(SmemLayoutQ{}) * sizeof(Element) * (kQResidual ? 2 : 1);
  static constexpr uint32_t kTmaBytesKV = cute::size(cute::take<0, 2>(SmemLayoutKV{})) * sizeof(Element);

  // kQResidual: Q's two e4m3 terms one after the other, as a (rows, head dim, term) tensor, so
  // that the S GEMM's descriptors of the second term are those of the first plus an offset (as
  // K's stages): one set of registers (two sets spilled with three consumer warpgroups).
  using SmemLayoutQTerms = decltype(cute::tile_to_shape(
      typename Traits::SmemLayoutAtomQ{},
      cute::make_shape(cute::Int<kBlockM>{}, cute::Int<Traits::kHeadDim>{}, cute::Int<kQResidual ? 2 : 1>{})));

  struct SharedStorage {
    // 1024-byte alignment: the 128-byte swizzle repeats every 8 rows of 128 bytes.
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutQTerms>, 1024> q;
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutKV>, 1024> k;
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutV>, 1024> v;
    float wait_pin[Traits::kConsumerThreads / cutlass::NumThreadsPerWarp];  // see pin_before_wgmma_wait
  };

  // FP8 descale factors of one tensor (flash_params.h); 16-bit kernels never read them.
  struct Descales {
    float const* ptr;
    DescaleStrides stride;
    // Those of one (batch, head), block i at [i * step]: one pointer and a 32-bit step stay
    // live through the mainloop (64-bit strides cost registers the causal loop does not have).
    struct Row {
      float const* ptr;
      int step;
      CUTLASS_DEVICE float operator[](int block) const { return ptr[block * step]; }
    };
    CUTLASS_DEVICE Row row(int bidb, int bidh) const {
      return {ptr + bidb * stride.batch + bidh * stride.head, int(stride.block)};
    }
  };

  struct Params {
    GmemShape shape_q;
    GmemShape shape_k;
    GmemShape shape_v;  // FP8: V^T's (head dim, padded keys, heads, batch)
    TmaQ tma_q;
    TmaQ tma_q_residual;  // kQResidual only (else a copy of tma_q, never used)
    TmaK tma_k;
    TmaV tma_v;
    Mask mask;
    int group_size;  // query heads per key/value head
    float scale_log2;
    Descales q_descale, k_descale, v_descale;
  };

  static Params to_underlying_arguments(FwdParams const& p) {
    GmemShape shape_q = gmem_shape(p, p.seqlen_q, p.nheads);
    GmemShape shape_k = gmem_shape(p, p.seqlen_k, p.nheads_kv);
    GmemShape shape_v = kFp8 ? cute::make_shape(p.headdim, p.seqlen_k_padded, p.nheads_kv, p.batch) : shape_k;
    auto input = [](void const* ptr, GmemShape const& shape, Strides3 const& s) {
      return gmem_tensor(static_cast<Element const*>(ptr), shape, s);
    };
    auto tma_q = cute::make_tma_copy(cute::SM90_TMA_LOAD{}, input(p.q, shape_q, p.q_stride), SmemLayoutQ{},
                                     cute::select<0, 2>(TileShape{}), cute::_1{});
    auto tma_q_residual =
        cute::make_tma_copy(cute::SM90_TMA_LOAD{}, input(kQResidual ? p.q_residual : p.q, shape_q, p.q_stride),
                            SmemLayoutQ{}, cute::select<0, 2>(TileShape{}), cute::_1{});
    auto tma_k = cute::make_tma_copy(cute::SM90_TMA_LOAD{}, input(p.k, shape_k, p.k_stride),
                                     cute::take<0, 2>(SmemLayoutKV{}), cute::select<1, 2>(TileShape{}), cute::_1{});
    auto tma_v = cute::make_tma_copy(cute::SM90_TMA_LOAD{}, input(p.v, shape_v, p.v_stride),
                                     cute::take<0, 2>(SmemLayoutV{}), VTileShape{}, cute::_1{});
    return {shape_q,
            shape_k,
            shape_v,
            tma_q,
            tma_q_residual,
            tma_k,
            tma_v,
            Mask{p.seqlen_q, p.seqlen_k},
            p.nheads / p.nheads_kv,
            p.softmax_scale_log2,
            {p.q_descale, p.q_descale_stride},
            {p.k_descale, p.k_descale_stride},
            {p.v_descale, p.v_descale_stride}};
  }

  CUTLASS_DEVICE static void prefetch_tma_descriptors(Params const& params) {
    cute::prefetch_tma_descriptor(params.tma_q.get_tma_descriptor());
    if constexpr (kQResidual) cute::prefetch_tma_descriptor(params.tma_q_residual.get_tma_descriptor());
    cute::prefetch_tma_descriptor(params.tma_k.get_tma_descriptor());
    cute::prefetch_tma_descriptor(params.tma_v.get_tma_descriptor());
  }

  // Producer, one warp (one elected lane issues the TMA copies): Q, then K and V of the key
  // tiles `keys` (non-empty) of the query tile. Before overwriting Q (every tile but the CTA's
  // first), wait until the consumers are done reading it.
  CUTLASS_DEVICE void load(Params const& params, Pipeline& pipeline_k, Pipeline& pipeline_v, PipelineState& write,
                           SharedStorage& smem, cutlass::arch::ClusterTransactionBarrier& barrier_q, int m_block,
                           int bidh, int bidb, KeyRange keys, bool wait_query_empty) const {
    using namespace cute;
    Tensor mQ = params.tma_q.get_tma_tensor(params.shape_q);
    Tensor mK = params.tma_k.get_tma_tensor(params.shape_k);
    Tensor mV = params.tma_v.get_tma_tensor(params.shape_v);
    int bidh_kv = bidh / params.group_size;  // GQA/MQA: query head h reads key/value head h / group
    Tensor gQ = local_tile(mQ(_, _, bidh, bidb), select<0, 2>(TileShape{}), make_coord(m_block, _0{}));
    Tensor gK = local_tile(mK(_, _, bidh_kv, bidb), select<1, 2>(TileShape{}), make_coord(_, _0{}));
    auto v_tile_coord = [] {
      if constexpr (kFp8) return make_coord(_0{}, _);  // V^T: key tiles along the columns
      else return make_coord(_, _0{});
    }();
    Tensor gV = local_tile(mV(_, _, bidh_kv, bidb), VTileShape{}, v_tile_coord);
    Tensor sQ = make_tensor(make_smem_ptr(smem.q.data()), SmemLayoutQ{});
    Tensor sK = make_tensor(make_smem_ptr(smem.k.data()), SmemLayoutKV{});
    Tensor sV = make_tensor(make_smem_ptr(smem.v.data()), SmemLayoutV{});
    auto [tQgQ, tQsQ] = tma_partition(params.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQ), group_modes<0, 2>(gQ));
    Tensor mQr = params.tma_q_residual.get_tma_tensor(params.shape_q);
    Tensor gQr = local_tile(mQr(_, _, bidh, bidb), select<0, 2>(TileShape{}), make_coord(m_block, _0{}));
    Tensor sQr = make_tensor(make_smem_ptr(smem.q.data() + cute::cosize_v<SmemLayoutQ>), SmemLayoutQ{});
    auto [tQrgQr, tQrsQr] =
        tma_partition(params.tma_q_residual, _0{}, Layout<_1>{}, group_modes<0, 2>(sQr), group_modes<0, 2>(gQr));
    // (Named tensors, not structured bindings: the loaders below capture them.)
    auto k_part = tma_partition(params.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
    auto v_part = tma_partition(params.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));
    Tensor tKgK = get<0>(k_part);
    Tensor tKsK = get<1>(k_part);
    Tensor tVgV = get<0>(v_part);
    Tensor tVsV = get<1>(v_part);
    bool const elected = cute::elect_one_sync();

    if (wait_query_empty) sync_query_empty();
    if (elected) {
      barrier_q.arrive_and_expect_tx(kTmaBytesQ);
      copy(params.tma_q.with(reinterpret_cast<cutlass::arch::ClusterTransactionBarrier::ValueType&>(barrier_q), 0),
           tQgQ, tQsQ);
      if constexpr (kQResidual) {
        copy(params.tma_q_residual.with(
                 reinterpret_cast<cutlass::arch::ClusterTransactionBarrier::ValueType&>(barrier_q), 0),
             tQrgQr, tQrsQr);
      }
    }
    // K of a key tile is needed one step before its V (the consumers' S GEMM of tile n runs
    // beside the PV GEMM of tile n+1), so K runs one tile ahead: K(n) is issued before V(n+1).
    // Both use the stage of their own key tile.
    auto load_k = [&](int n_block, PipelineState const& stage) {
      pipeline_k.producer_acquire(stage);
      if (elected) {
        copy(params.tma_k.with(*pipeline_k.producer_get_barrier(stage), 0), tKgK(_, n_block), tKsK(_, stage.index()));
      }
    };
    auto load_v = [&](int n_block, PipelineState const& stage) {
      pipeline_v.producer_acquire(stage);
      if (elected) {
        copy(params.tma_v.with(*pipeline_v.producer_get_barrier(stage), 0), tVgV(_, n_block), tVsV(_, stage.index()));
      }
    };
    load_k(keys.end - 1, write);
    for (int n_block = keys.end - 2; n_block >= keys.begin; --n_block) {
      PipelineState next = write;
      ++next;
      load_k(n_block, next);
      load_v(n_block + 1, write);
      write = next;
    }
    load_v(keys.begin, write);
    ++write;
  }

  // Q's buffer handshake (persistent kernel): consumers arrive, the producer warp waits.
  static constexpr int kQueryEmptyThreads = Traits::kConsumerThreads + cutlass::NumThreadsPerWarp;
  CUTLASS_DEVICE static void sync_query_empty() {
    cutlass::arch::NamedBarrier::sync(kQueryEmptyThreads, int(FwdNamedBarrier::kQueryEmpty));
  }
  CUTLASS_DEVICE static void arrive_query_empty() {
    cutlass::arch::NamedBarrier::arrive(kQueryEmptyThreads, int(FwdNamedBarrier::kQueryEmpty));
  }

  // Pingpong turn-taking between the two consumer warpgroups: a warpgroup waits for its turn
  // before issuing GEMMs and passes the turn right after issuing them. Consumer warpgroup 1
  // gives the first turn to warpgroup 0 and skips its very last pass, so every arrival is
  // matched by a wait.
  struct GemmTurns {
    int consumer;  // 0 or 1

    CUTLASS_DEVICE void start() const {
      if constexpr (Options::kPingpong) {
        if (consumer == 1) pass_to(0);
      }
    }
    CUTLASS_DEVICE void acquire() const {
      if constexpr (Options::kPingpong) {
        cutlass::arch::NamedBarrier::sync(2 * 128, int(FwdNamedBarrier::kWarpSchedulerWG1) + consumer);
      }
    }
    CUTLASS_DEVICE void release(bool last) const {
      if constexpr (Options::kPingpong) {
        if (!(last && consumer == 1)) pass_to(1 - consumer);
      }
    }
    CUTLASS_DEVICE static void pass_to(int other) {
      cutlass::arch::NamedBarrier::arrive(2 * 128, int(FwdNamedBarrier::kWarpSchedulerWG1) + other);
    }
  };

  // What a consumer's mma() leaves to the epilogue: whether any key tile was visited (none:
  // every row of the tile sees no key) and, if so, the V stage of its last PV GEMM, which it
  // has not released (the epilogue stages O there and releases it).
  struct MmaResult {
    bool visited;
    int last_v_stage;
  };

  // Consumers: accumulate O (unnormalized) and the softmax statistics for query tile
  // (m_block, bidh, bidb) over its key tiles `keys`.
  template <class FragO, class Softmax>
  CUTLASS_DEVICE MmaResult mma(Params const& params, Pipeline& pipeline_k, Pipeline& pipeline_v, PipelineState& read,
                         FragO& tOrO, Softmax& softmax, int thread_idx, SharedStorage& smem,
                         cutlass::arch::ClusterTransactionBarrier& barrier_q, int q_phase, int m_block, int bidh,
                         int bidb, KeyRange keys) const {
    using namespace cute;
    clear(tOrO);
    if (keys.end <= keys.begin) return {false, 0};
    Tensor sQ = make_tensor(make_smem_ptr(smem.q.data()), SmemLayoutQ{});
    Tensor sK = make_tensor(make_smem_ptr(smem.k.data()), SmemLayoutKV{});
    Tensor sVt = make_tensor(make_smem_ptr(smem.v.data()), SmemLayoutVt{});
    typename Traits::TiledMmaQK mma_qk;
    typename Traits::TiledMmaPV mma_pv;
    auto thr_qk = mma_qk.get_thread_slice(thread_idx);
    // The shared-memory operands (descriptors): sliced per warpgroup, warp-uniform (wgmma_utils.hpp).
    // FP8 head dim 128, one interleaved A/B on the H100: 16k 903 -> 962 TFLOP/s, causal 888 -> 897
    // (benchmarks/results/2026-12-06_h100_ab_fp8_uniform_slices.txt).
    auto wg_qk = warpgroup_slice(mma_qk, thread_idx);
    Tensor tSrQ = wg_qk.partition_fragment_A(sQ);
    Tensor tSrQterms = wg_qk.partition_fragment_A(make_tensor(make_smem_ptr(smem.q.data()), SmemLayoutQTerms{}));
    Tensor tSrK = wg_qk.partition_fragment_B(sK);
    Tensor tOrV = warpgroup_slice(mma_pv, thread_idx).partition_fragment_B(sVt);
    Tensor tSrS = partition_fragment_C(mma_qk, select<0, 1>(TileShape{}));
    Tensor tScS = thr_qk.partition_C(make_identity_tensor(select<0, 1>(TileShape{})));  // (row, col) of each score
    Tensor scores = make_tensor(tSrS.data(), acc_rowcol(tSrS.layout()));
    Tensor o_rows = make_tensor(tOrO.data(), acc_rowcol(tOrO.layout()));
    // P in the input precision, in the register layout the PV WGMMA reads as its A operand:
    // 16-bit P keeps the accumulator's order and is viewed as the operand; FP8 P is written in the
    // operand's order (convert_to_fp8_a_operand).
    Tensor rP = [&] {
      if constexpr (kFp8) return make_tensor<Element>(fp8_a_operand_layout(tSrS.layout()));
      else return make_tensor_like<Element>(tSrS);
    }();
    Tensor tOrP = [&] {
      if constexpr (kFp8) return make_tensor(rP.data(), rP.layout());
      else return make_tensor(rP.data(), acc_as_a_operand(rP.layout()));
    }();
    constexpr int kRows = decltype(size<0>(scores))::value;
    float o_scale[kRows];
    GemmTurns turns{thread_idx / 128};

    // S -> masked (if `masked`) -> probabilities (in place); o_scale says how to rescale O.
    // Whether a key tile needs the mask is decided per loop, not per tile: a runtime test in the
    // loop body is if-converted by ptxas into a compare and a select per score on every tile.
    // `masked` is a bool only for the first tile of the prologue.
    int const bidh_kv = bidh / params.group_size;
    float const q_scale_log2 = kFp8 ? params.scale_log2 * params.q_descale.row(bidb, bidh)[m_block] : params.scale_log2;
    auto const k_descale = params.k_descale.row(bidb, bidh_kv);
    auto const v_descale = params.v_descale.row(bidb, bidh_kv);
    // FP8: key tile n_block's factors.
    auto tile_scales = [&](int n_block) {
      float v = v_descale[n_block];
      return Fp8TileScales{q_scale_log2 * k_descale[n_block], v, __log2f(v)};
    };
    // Whether O must be rescaled by o_scale before its next PV GEMM (FP8: mostly not, softmax.hpp).
    bool rescale_o = true;
    auto softmax_to_p = [&](int n_block, auto masked) {
      if (masked) params.mask.apply(tSrS, tScS, m_block, n_block);
      if constexpr (kFp8) {
        // Masked tiles have rows with no key >= 0 (all -inf): the maxima go by FMNMX there.
        constexpr bool kUnmasked = std::is_same_v<decltype(masked), cute::false_type>;
        rescale_o = softmax.template step_fp8<kUnmasked>(tSrS, o_scale, tile_scales(n_block));
      } else {
        softmax.step(scores, o_scale, q_scale_log2);
      }
    };
    auto rescale_o_rows = [&] {
      if (rescale_o) scale_rows(o_rows, o_scale);
    };
    auto convert_p = [&] {
      if constexpr (kFp8) {
        convert_to_fp8_a_operand(tSrS, rP);
      } else {
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size(rP); ++i) rP(i) = static_cast<Element>(tSrS(i));
      }
    };

    // S = Q K^T of the K stage, issued, not waited for (kQResidual: plus Q's second term times K).
    auto s_gemm = [&](int k_stage) {
      if constexpr (kQResidual) {
        warpgroup_gemm_terms(mma_qk, tSrQterms, tSrK(_, _, _, k_stage), tSrS);
      } else {
        warpgroup_gemm</*zero_init=*/true, /*wait=*/-1>(mma_qk, tSrQ, tSrK(_, _, _, k_stage), tSrS);
      }
    };
    // A GEMM issued in its own turn and waited for; its pipeline stage is released after.
    auto s_gemm_alone = [&] {
      turns.acquire();
      pipeline_k.consumer_wait(read);
      s_gemm(read.index());
      turns.release(false);
      warpgroup_wait<0>();
      pipeline_k.consumer_release(read);
    };
    // The last one (last_turn) keeps its V stage for the epilogue.
    auto pv_gemm_alone = [&](PipelineState const& v_stage, bool last_turn) {
      turns.acquire();
      pipeline_v.consumer_wait(v_stage);
      warpgroup_gemm</*zero_init=*/false, /*wait=*/-1>(mma_pv, tOrP, tOrV(_, _, _, v_stage.index()), tOrO);
      turns.release(last_turn);
      warpgroup_wait<0>();
      if (!last_turn) pipeline_v.consumer_release(v_stage);
    };

    // Key tiles are visited from keys.end - 1 down to keys.begin; those at or above
    // n_block_masked come first and are the only ones masked.
    int const n_block_masked = params.mask.n_block_min_masked(m_block);
    barrier_q.wait(q_phase);
    turns.start();
    if constexpr (Options::kIntraWGOverlap) {
      s_gemm_alone();  // prologue: S of the first key tile
      softmax_to_p(keys.end - 1, keys.end - 1 >= n_block_masked);
      convert_p();
      PipelineState read_v = read;
      ++read;
      auto step = [&](int n_block, auto masked) {
        // S_next = Q K_n^T and O += P V of the previous tile, in flight together.
        turns.acquire();
        pipeline_k.consumer_wait(read);
        s_gemm(read.index());
        rescale_o_rows();  // the previous softmax's rescale of O, under the S GEMM
        pipeline_v.consumer_wait(read_v);
        warpgroup_gemm</*zero_init=*/false, /*wait=*/-1>(mma_pv, tOrP, tOrV(_, _, _, read_v.index()), tOrO);
        turns.release(false);
        warpgroup_wait<1>();  // S_next is done; its softmax overlaps the PV GEMM
        pipeline_k.consumer_release(read);
        softmax_to_p(n_block, masked);
        pin_before_wgmma_wait(softmax.row_sum[0] + softmax.row_sum[kRows - 1], smem.wait_pin[thread_idx / 32]);
        warpgroup_wait<0>();  // PV is done: O and P may change now
        pipeline_v.consumer_release(read_v);
        convert_p();
        read_v = read;
        ++read;
      };
      int n_block = keys.end - 2;
      // Without causality only the first (prologue) tile can straddle the end of the keys.
      if constexpr (kCausal) {
        for (; n_block >= n_block_masked && n_block >= keys.begin; --n_block) step(n_block, cute::true_type{});
      }
      for (; n_block >= keys.begin; --n_block) step(n_block, cute::false_type{});
      arrive_query_empty();  // every QK^T GEMM of this tile is done
      rescale_o_rows();
      pv_gemm_alone(read_v, /*last_turn=*/true);  // the last P V
      return {true, int(read_v.index())};
    } else {
      int last_v_stage = 0;
      auto step = [&](int n_block, auto masked) {
        s_gemm_alone();
        softmax_to_p(n_block, masked);
        rescale_o_rows();
        convert_p();
        pv_gemm_alone(read, /*last_turn=*/n_block == keys.begin);
        last_v_stage = int(read.index());
        ++read;
      };
      int n_block = keys.end - 1;
      for (; n_block >= n_block_masked && n_block >= keys.begin; --n_block) step(n_block, cute::true_type{});
      for (; n_block >= keys.begin; --n_block) step(n_block, cute::false_type{});
      arrive_query_empty();
      return {true, last_v_stage};
    }
  }
};

}  // namespace fa3
