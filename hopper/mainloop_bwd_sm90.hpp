// Backward mainloop (fp16/bf16), split as a CUTLASS collective. A CTA keeps one key tile (K, V)
// in shared memory and visits its steps (bwd_schedule.h): the query tiles that see it, for
// every query head of its key/value head's group, or a piece of that list:
//   producer (one warp): K and V once; then per step Q with its LSE and dO with its D through a
//     two-stage ring (PipelineTmaAsync; TMA tiles plus bulk copies of the row vectors).
//   consumers (two warpgroups, 64 keys each), per step (FlashAttention-3's order):
//     S^T = K Q^T, dP^T = V dO^T                       (shared-memory operands)
//     P^T = exp2(S^T * scale_log2 - LSE_log2)          (in registers, while dP^T's GEMM runs)
//     dS^T = P^T (dP^T - D)                            (in registers, once dP^T is done)
//     dS^T -> shared memory (stmatrix, transposed)
//     dV += P^T dO                                     (P^T as a register operand)
//     dQ_partial = dS K                                (both warpgroups' dS; each takes half of dQ:
//                                                       rows, columns or transposed, TiledMmaDQ)
//     dK += dS^T Q                                     (dS^T as a register operand)
//     dQ_partial is added to the fp32 dQ accumulator in global memory (the accumulator's order,
//     bwd_dq_accum.hpp) by vector reductions from the registers (head dim 128), or (head dim 64,
//     and deterministic mode) handed over in shared memory to
//   the dQ writer (one warp of the producer warpgroup): adds each warpgroup's half of a step's
//     dQ_partial to the accumulator with one bulk reduction (cp.reduce.async.bulk .add.f32).
// The softmax scale of dK and dQ is applied at the end (epilogue, postprocess).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "bwd_dq_accum.hpp"
#include "bwd_schedule.h"
#include "bwd_workspace.h"
#include "flash_bwd_params.h"
#include "mask.hpp"
#include "named_barriers.h"
#include "wgmma_utils.hpp"

namespace fa3 {

template <class Traits, bool kCausal>
struct MainloopBwdSm90 {
  using Element = typename Traits::Element;
  static constexpr int kBlockM = Traits::kBlockM;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kHeadDim = Traits::kHeadDim;
  static constexpr int kStages = Traits::kStages;
  using Mask = BwdMask<kBlockM, kBlockN, kCausal>;
  using DqOrder = BwdDqAccumOrder<Traits>;
  using Pipeline = cutlass::PipelineTmaAsync<kStages>;
  using PipelineState = cutlass::PipelineState<kStages>;

  using GmemShape4 = cute::Shape<int32_t, int32_t, int32_t, int32_t>;  // (rows, head dim, heads, batch)
  using GmemTensorIn = decltype(cute::make_tensor(
      cute::make_gmem_ptr(static_cast<Element const*>(nullptr)), GmemShape4{},
      cute::Stride<int64_t, cute::_1, int64_t, int64_t>{}));
  using QTile = cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>>;
  using KTile = cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>;
  using TmaQ = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensorIn{},
                                            cute::take<0, 2>(typename Traits::SmemLayoutQ{}), QTile{}, cute::_1{}));
  using TmaK = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensorIn{}, typename Traits::SmemLayoutKV{},
                                            KTile{}, cute::_1{}));
  static constexpr uint32_t kTileBytesQ = kBlockM * kHeadDim * sizeof(Element);
  static constexpr uint32_t kRowBytes = kBlockM * sizeof(float);
  static constexpr uint32_t kStageBytes = 2 * (kTileBytesQ + kRowBytes);  // Q, LSE, dO, D
  static constexpr uint32_t kTmaBytesKV = 2 * kBlockN * kHeadDim * sizeof(Element);

  struct SharedStorage {
    cute::array_aligned<Element, cute::cosize_v<typename Traits::SmemLayoutKV>, 1024> k;
    cute::array_aligned<Element, cute::cosize_v<typename Traits::SmemLayoutKV>, 1024> v;
    cute::array_aligned<Element, cute::cosize_v<typename Traits::SmemLayoutQ>, 1024> q;
    cute::array_aligned<Element, cute::cosize_v<typename Traits::SmemLayoutQ>, 1024> dout;
    cute::array_aligned<Element, cute::cosize_v<typename Traits::SmemLayoutDS>, 1024> ds;
    alignas(128) float dq[DqOrder::kTileFloats];  // one step's dQ_partial, in the accumulator's order
    alignas(16) float lse_log2[kStages][kBlockM];
    alignas(16) float dsum[kStages][kBlockM];
  };

  struct Params {
    GmemShape4 shape_q;
    GmemShape4 shape_k;
    TmaQ tma_q;
    TmaQ tma_do;
    TmaK tma_k;
    TmaK tma_v;
    Mask mask;
    int nheads;
    int group_size;  // query heads per key/value head
    int m_blocks;
    int seqlen_q_rounded;
    float scale_log2;
    float const* lse_log2;  // workspace (bwd_workspace.h)
    float const* dsum;
    float* dq_accum;
    int* dq_counter;
    bool deterministic;
  };

  static Params to_underlying_arguments(BwdParams const& p, BwdWorkspaceLayout const& w) {
    using namespace cute;
    char* ws = static_cast<char*>(p.workspace);
    GmemShape4 shape_q = make_shape(p.seqlen_q, p.headdim, p.nheads, p.batch);
    GmemShape4 shape_k = make_shape(p.seqlen_k, p.headdim, p.nheads_kv, p.batch);
    auto input = [](void const* ptr, GmemShape4 const& shape, Strides3 const& s) {
      return make_tensor(make_gmem_ptr(static_cast<Element const*>(ptr)), shape,
                         make_stride(s.row, _1{}, s.head, s.batch));
    };
    auto q_tma = [&](void const* ptr, Strides3 const& s) {
      return make_tma_copy(SM90_TMA_LOAD{}, input(ptr, shape_q, s), take<0, 2>(typename Traits::SmemLayoutQ{}),
                           QTile{}, _1{});
    };
    auto k_tma = [&](void const* ptr, Strides3 const& s) {
      return make_tma_copy(SM90_TMA_LOAD{}, input(ptr, shape_k, s), typename Traits::SmemLayoutKV{}, KTile{}, _1{});
    };
    return {shape_q,
            shape_k,
            q_tma(p.q, p.q_stride),
            q_tma(p.dout, p.dout_stride),
            k_tma(p.k, p.k_stride),
            k_tma(p.v, p.v_stride),
            Mask{p.seqlen_q, p.seqlen_k},
            p.nheads,
            p.nheads / p.nheads_kv,
            w.m_blocks,
            w.seqlen_q_rounded,
            p.softmax_scale * 1.4426950408889634f,  // log2(e)
            reinterpret_cast<float const*>(ws + w.lse_log2_offset),
            reinterpret_cast<float const*>(ws + w.dsum_offset),
            reinterpret_cast<float*>(ws + w.dq_accum_offset),
            reinterpret_cast<int*>(ws + w.counter_offset),
            p.deterministic};
  }

  CUTLASS_DEVICE static void prefetch_tma_descriptors(Params const& params) {
    cute::prefetch_tma_descriptor(params.tma_q.get_tma_descriptor());
    cute::prefetch_tma_descriptor(params.tma_do.get_tma_descriptor());
    cute::prefetch_tma_descriptor(params.tma_k.get_tma_descriptor());
    cute::prefetch_tma_descriptor(params.tma_v.get_tma_descriptor());
  }

  // Whether dQ_partial goes through shared memory to the writer warp (BwdKernelTraits::kDqFromRegisters).
  CUTLASS_DEVICE static bool uses_dq_writer(Params const& params) {
    return !Traits::kDqFromRegisters || params.deterministic;
  }

  // Row index of (batch, head, first row of query tile m) in the workspace's padded row vectors.
  CUTLASS_DEVICE static int64_t row_offset(Params const& params, int bidb, int bidh, int m_block) {
    return (int64_t(bidb) * params.nheads + bidh) * params.seqlen_q_rounded + m_block * kBlockM;
  }

  // Producer, one warp (one elected lane issues the copies): K and V of key tile n_block, then
  // Q, LSE, dO and D of each step.
  CUTLASS_DEVICE void load(Params const& params, Pipeline& pipeline, PipelineState& write, SharedStorage& smem,
                           cutlass::arch::ClusterTransactionBarrier& barrier_kv, int n_block, int bidh_kv, int bidb,
                           BwdSteps const& steps) const {
    using namespace cute;
    if (!cute::elect_one_sync()) return;
    Tensor mK = params.tma_k.get_tma_tensor(params.shape_k);
    Tensor mV = params.tma_v.get_tma_tensor(params.shape_k);
    Tensor mQ = params.tma_q.get_tma_tensor(params.shape_q);
    Tensor mdO = params.tma_do.get_tma_tensor(params.shape_q);
    Tensor sK = make_tensor(make_smem_ptr(smem.k.data()), typename Traits::SmemLayoutKV{});
    Tensor sV = make_tensor(make_smem_ptr(smem.v.data()), typename Traits::SmemLayoutKV{});
    Tensor sQ = make_tensor(make_smem_ptr(smem.q.data()), typename Traits::SmemLayoutQ{});
    Tensor sdO = make_tensor(make_smem_ptr(smem.dout.data()), typename Traits::SmemLayoutQ{});
    Tensor gK = local_tile(mK(_, _, bidh_kv, bidb), KTile{}, make_coord(n_block, _0{}));
    Tensor gV = local_tile(mV(_, _, bidh_kv, bidb), KTile{}, make_coord(n_block, _0{}));
    auto [tKgK, tKsK] = tma_partition(params.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
    auto [tVgV, tVsV] = tma_partition(params.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));
    using BarrierType = cutlass::arch::ClusterTransactionBarrier::ValueType;
    barrier_kv.arrive_and_expect_tx(kTmaBytesKV);
    copy(params.tma_k.with(reinterpret_cast<BarrierType&>(barrier_kv), 0), tKgK, tKsK);
    copy(params.tma_v.with(reinterpret_cast<BarrierType&>(barrier_kv), 0), tVgV, tVsV);

    steps.for_each_head([&](int g, int m_first, int m_last) {
      int const bidh = bidh_kv * params.group_size + g;
      Tensor gQ = local_tile(mQ(_, _, bidh, bidb), QTile{}, make_coord(_, _0{}));
      Tensor gdO = local_tile(mdO(_, _, bidh, bidb), QTile{}, make_coord(_, _0{}));
      auto [tQgQ, tQsQ] = tma_partition(params.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQ), group_modes<0, 2>(gQ));
      auto [tQgdO, tQsdO] =
          tma_partition(params.tma_do, _0{}, Layout<_1>{}, group_modes<0, 2>(sdO), group_modes<0, 2>(gdO));
      for (int m_block = m_first; m_block < m_last; ++m_block) {
        pipeline.producer_acquire(write);
        uint64_t* full = pipeline.producer_get_barrier(write);
        int const s = write.index();
        copy(params.tma_q.with(*full, 0), tQgQ(_, m_block), tQsQ(_, s));
        copy(params.tma_do.with(*full, 0), tQgdO(_, m_block), tQsdO(_, s));
        int64_t const row = row_offset(params, bidb, bidh, m_block);
        SM90_BULK_COPY_G2S::copy(params.lse_log2 + row, full, smem.lse_log2[s], kRowBytes);
        SM90_BULK_COPY_G2S::copy(params.dsum + row, full, smem.dsum[s], kRowBytes);
        ++write;
      }
    });
  }

  // Consumers: accumulate dK (unscaled) and dV for the key tile over the steps the producer
  // loads, in the same order; add each step's dS K to the dQ accumulator.
  template <class FragKV>
  CUTLASS_DEVICE void mma(Params const& params, Pipeline& pipeline, PipelineState& read, FragKV& tdKrdK,
                          FragKV& tdVrdV, int thread_idx, SharedStorage& smem,
                          cutlass::arch::ClusterTransactionBarrier& barrier_kv, int n_block, int bidh_kv, int bidb,
                          BwdSteps const& steps) const {
    using namespace cute;
    using Int_M = Int<kBlockM>;
    using Int_N = Int<kBlockN>;
    using Int_D = Int<kHeadDim>;
    clear(tdKrdK);
    clear(tdVrdV);
    if (steps.empty()) return;
    Tensor sK = make_tensor(make_smem_ptr(smem.k.data()), typename Traits::SmemLayoutKV{});
    Tensor sV = make_tensor(make_smem_ptr(smem.v.data()), typename Traits::SmemLayoutKV{});
    Tensor sKt = make_tensor(make_smem_ptr(smem.k.data()), typename Traits::SmemLayoutKt{});
    Tensor sQ = make_tensor(make_smem_ptr(smem.q.data()), typename Traits::SmemLayoutQ{});
    Tensor sdO = make_tensor(make_smem_ptr(smem.dout.data()), typename Traits::SmemLayoutQ{});
    Tensor sQt = make_tensor(make_smem_ptr(smem.q.data()), typename Traits::SmemLayoutQt{});
    Tensor sdOt = make_tensor(make_smem_ptr(smem.dout.data()), typename Traits::SmemLayoutQt{});
    Tensor sdS = make_tensor(make_smem_ptr(smem.ds.data()), typename Traits::SmemLayoutDS{});
    Tensor sdSt = make_tensor(make_smem_ptr(smem.ds.data()), typename Traits::SmemLayoutDSt{});

    typename Traits::TiledMmaSdP mma_sdp;
    typename Traits::TiledMmaDKV mma_dkv;
    typename Traits::TiledMmaDQ mma_dq;
    auto thr_sdp = mma_sdp.get_thread_slice(thread_idx);
    auto thr_dkv = mma_dkv.get_thread_slice(thread_idx);
    auto thr_dq = mma_dq.get_thread_slice(thread_idx);
    Tensor tSrK = thr_sdp.partition_fragment_A(sK);
    Tensor tSrV = thr_sdp.partition_fragment_A(sV);
    Tensor tSrQ = thr_sdp.partition_fragment_B(sQ);     // (.., stage)
    Tensor tSrdO = thr_sdp.partition_fragment_B(sdO);   // (.., stage)
    Tensor tDrQt = thr_dkv.partition_fragment_B(sQt);   // (.., stage)
    Tensor tDrdOt = thr_dkv.partition_fragment_B(sdOt); // (.., stage)
    // dS^T's registers to shared memory with transposing stmatrix: the keys of a query land
    // side by side, as dQ's GEMM reads dS (K-major).
    auto copy_ds = make_tiled_copy_C(Copy_Atom<SM90_U16x8_STSM_T, Element>{}, mma_sdp);
    auto thr_copy_ds = copy_ds.get_thread_slice(thread_idx);
    Tensor tDSsdSt = thr_copy_ds.partition_D(sdSt);  // (.., buffer)

    Tensor tSrS = partition_fragment_C(mma_sdp, Shape<Int_N, Int_M>{});
    Tensor tSrdP = partition_fragment_C(mma_sdp, Shape<Int_N, Int_M>{});
    Tensor tdQrdQ = partition_fragment_C(mma_dq, typename Traits::DqTile{});
    static_assert(decltype(size(tdQrdQ))::value == DqOrder::kValuesPerThread);
    Tensor tScS = thr_sdp.partition_C(make_identity_tensor(Shape<Int_N, Int_M>{}));  // (key, query) in the tiles
    Tensor scores = make_tensor(tSrS.data(), acc_rowcol(tSrS.layout()));
    Tensor dp = make_tensor(tSrdP.data(), acc_rowcol(tSrdP.layout()));
    Tensor coords = make_tensor(tScS.data(), acc_rowcol(tScS.layout()));
    constexpr int kQueriesPerThread = decltype(size<1>(coords))::value;
    // Tiles over 64 rows read the LSE and D where they are used: held, they are 40 (80 rows) or 64
    // (128 rows) registers per thread. At head dim 64, 128 rows, that ended the spills and measured
    // faster than holding them (H100, 16k: 508 -> 533 TFLOP/s, causal 493 -> 510).
    constexpr bool kStatsAtUse = kBlockM > 64;
    // A step's row vector (LSE or D, shared memory) at this thread's j-th query column.
    auto query_value = [&](float const* row_vector, int j) { return row_vector[int(get<1>(coords(0, j)))]; };
    // P^T and dS^T in the input precision: the register A operands of dV and dK's GEMMs.
    Tensor rP = make_tensor_like<Element>(tSrS);
    Tensor rdS = make_tensor_like<Element>(tSrdP);
    Tensor tDrP = make_tensor(rP.data(), acc_as_a_operand(rP.layout()));
    Tensor tDrdS = make_tensor(rdS.data(), acc_as_a_operand(rdS.layout()));
    Tensor tDSrdS = thr_copy_ds.retile_S(rdS);
    int const group = thread_idx / cutlass::NumThreadsPerWarpGroup;  // this warpgroup's dQ buffer and barriers

    int const m_unmasked = params.mask.m_block_unmasked(n_block, steps.m_begin, steps.m_end);
    int ds_buffer = 0;
    barrier_kv.wait(0);

    // One copy of the step for masked and unmasked tiles: two (a compile-time flag) left the
    // causal kernel short of registers for its GEMMs (ptxas C7511: serialized WGMMA, and spills).
    // dq_mine: this thread's first dQ_accum value in query tile 0 of the step's head.
    auto step = [&](float* dq_mine, int m_block, bool masked) {
      int const s = read.index();
      pipeline.consumer_wait(read);
      // The LSE at this thread's queries, read from shared memory ahead of the GEMMs: read after
      // the wait, their latency stalled the first exponentials; issued after the GEMMs, they
      // still did (queued behind the GEMMs' operand reads, ncu).
      float lse[kQueriesPerThread];
      if constexpr (!kStatsAtUse) {
        CUTLASS_PRAGMA_UNROLL
        for (int j = 0; j < kQueriesPerThread; ++j) lse[j] = query_value(smem.lse_log2[s], j);
      }
      warpgroup_gemm</*zero_init=*/true, /*wait=*/-1>(mma_sdp, tSrK, tSrQ(_, _, _, s), tSrS);
      warpgroup_gemm</*zero_init=*/true, /*wait=*/-1>(mma_sdp, tSrV, tSrdO(_, _, _, s), tSrdP);
      // P^T = exp2(S^T scale_log2 - LSE_log2), the forward's probabilities recomputed, while
      // dP^T's GEMM runs.
      warpgroup_wait<1>();
      warpgroup_fence_operand(tSrS);
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < size<1>(scores); ++j) {
        float const l = kStatsAtUse ? query_value(smem.lse_log2[s], j) : lse[j];
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size<0>(scores); ++i) scores(i, j) = exp2f(fmaf(scores(i, j), params.scale_log2, -l));
      }
      // The mask as its own pass behind one warp-uniform branch: inside the loop above its
      // per-element test cost every step ~90 instructions (causal, seen in the SASS).
      if (masked) {
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size(scores); ++i) {
          if (params.mask.hidden(n_block, m_block, int(get<0>(coords(i))), int(get<1>(coords(i))))) scores(i) = 0.f;
        }
      }
      float dsum[kQueriesPerThread];
      if constexpr (!kStatsAtUse) {
        CUTLASS_PRAGMA_UNROLL
        for (int j = 0; j < kQueriesPerThread; ++j) dsum[j] = query_value(smem.dsum[s], j);
      }
      // dS^T = P^T (dP^T - D), the gradient of the scores (before the softmax scale), once dP^T's
      // GEMM is done; P^T and dS^T are then rounded together and dV's GEMM is issued after
      // (FlashAttention-3's order). Issuing dV's GEMM on P^T before, to compute dS^T under it, kept
      // the fp32 scores and the rounded P^T live together and measured slower (one interleaved
      // A/B on an H200, medians, TFLOP/s at 16k: head dim 64 454 -> 481, causal 455 -> 460, head
      // dim 128 575 -> 575, causal 549 -> 563; ..._h200_ab_bwd_fa3_order.txt).
      warpgroup_wait<0>();
      warpgroup_fence_operand(tSrdP);
      CUTLASS_PRAGMA_UNROLL
      for (int j = 0; j < size<1>(dp); ++j) {
        float const d = kStatsAtUse ? query_value(smem.dsum[s], j) : dsum[j];
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size<0>(dp); ++i) dp(i, j) = scores(i, j) * (dp(i, j) - d);
      }
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(rP); ++i) rP(i) = static_cast<Element>(tSrS(i));
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(rdS); ++i) rdS(i) = static_cast<Element>(tSrdP(i));
      // dS^T to shared memory (the fence waits for the stores while dV's GEMM runs), then dQ's
      // GEMM, which needs both halves, before dK's: dQ's hand-over below then runs under dK's.
      copy(copy_ds, tDSrdS, tDSsdSt(_, _, _, ds_buffer));
      warpgroup_gemm</*zero_init=*/false, /*wait=*/-1>(mma_dkv, tDrP, tDrdOt(_, _, _, s), tdVrdV);
      cutlass::arch::fence_view_async_shared();  // visible to the async proxy (dQ's GEMM)
      cutlass::arch::NamedBarrier::sync(Traits::kConsumerThreads, int(BwdNamedBarrier::kDsReady));
      // (its operands partitioned here, not ahead of the loop: that measured 2% slower at head dim 64)
      if constexpr (Traits::kDqTransposed) {
        warpgroup_gemm</*zero_init=*/true, /*wait=*/-1>(mma_dq, thr_dq.partition_fragment_A(sKt),
                                                         thr_dq.partition_fragment_B(sdS)(_, _, _, ds_buffer), tdQrdQ);
      } else {
        warpgroup_gemm</*zero_init=*/true, /*wait=*/-1>(mma_dq, thr_dq.partition_fragment_A(sdS)(_, _, _, ds_buffer),
                                                         thr_dq.partition_fragment_B(sKt), tdQrdQ);
      }
      warpgroup_gemm</*zero_init=*/false, /*wait=*/-1>(mma_dkv, tDrdS, tDrQt(_, _, _, s), tdKrdK);
      ds_buffer ^= 1;
      warpgroup_wait<1>();  // dV's and dQ's GEMMs are done (groups finish in order), dK's runs
      warpgroup_fence_operand(tdQrdQ);
      if (!uses_dq_writer(params)) {
        // dQ_accum[query tile] += dQ_partial straight from the registers, four floats per
        // reduction; a warp's land in 512 contiguous bytes (the accumulator's order).
        // (one base address; each reduction's offset from it is a compile-time constant)
        float* mine = dq_mine + m_block * DqOrder::kTileFloats;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size(tdQrdQ); i += 4) {
          asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(mine + DqOrder::offset(0, i)),
                       "f"(tdQrdQ(i)), "f"(tdQrdQ(i + 1)), "f"(tdQrdQ(i + 2)), "f"(tdQrdQ(i + 3)));
        }
      } else {
        // dQ_partial to shared memory for the writer warp, once it has read the previous step's.
        cutlass::arch::NamedBarrier::sync(kDqSyncThreads, int(BwdNamedBarrier::kDqEmpty) + group);
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < size(tdQrdQ); i += 4) {
          *reinterpret_cast<float4*>(smem.dq + DqOrder::offset(thread_idx, i)) =
              make_float4(tdQrdQ(i), tdQrdQ(i + 1), tdQrdQ(i + 2), tdQrdQ(i + 3));
        }
        cutlass::arch::fence_view_async_shared();  // visible to the bulk copy (async proxy)
        cutlass::arch::NamedBarrier::arrive(kDqSyncThreads, int(BwdNamedBarrier::kDqFull) + group);
      }
      warpgroup_wait<0>();  // dK's GEMM has read Q: the stage may be refilled
      pipeline.consumer_release(read);
      ++read;
    };

    steps.for_each_head([&](int g, int m_first, int m_last) {
      int const bidh = bidh_kv * params.group_size + g;
      float* dq_mine = params.dq_accum + row_offset(params, bidb, bidh, 0) * kHeadDim + DqOrder::offset(thread_idx, 0);
      for (int m_block = m_first; m_block < m_last; ++m_block) step(dq_mine, m_block, m_block < m_unmasked);
    });
  }

  // A consumer warpgroup and the writer warp meet on its dQ barriers.
  static constexpr int kDqSyncThreads = cutlass::NumThreadsPerWarpGroup + cutlass::NumThreadsPerWarp;
  static constexpr uint32_t kDqGroupBytes = DqOrder::kGroupFloats * sizeof(float);

  // dQ writer, one warp (one elected lane issues the copies): for every step the consumers run
  // and each warpgroup, dQ_accum[query tile][its half] += its dQ_partial from shared memory, as
  // one bulk reduction (the half is contiguous in the accumulator). Deterministic mode takes
  // turns in key-tile order: the CTA of key tile n adds after that of n - 1 has (every key tile
  // below n that this query tile sees has one; they start in launch order, lower tiles first, so
  // the wait ends).
  CUTLASS_DEVICE void store_dq(Params const& params, SharedStorage& smem, int n_block, int bidh_kv, int bidb,
                               BwdSteps const& steps) const {
    constexpr int kGroups = Traits::kConsumerWarpGroups;
    bool const elected = cute::elect_one_sync();
    CUTLASS_PRAGMA_UNROLL
    for (int w = 0; w < kGroups; ++w) {  // the buffers start empty
      cutlass::arch::NamedBarrier::arrive(kDqSyncThreads, int(BwdNamedBarrier::kDqEmpty) + w);
    }
    int steps_left = steps.count();
    steps.for_each_head([&](int g, int m_first, int m_last) {
      int const bidh = bidh_kv * params.group_size + g;
      for (int m_block = m_first; m_block < m_last; ++m_block) {
        int* counter = params.dq_counter + (int64_t(bidb) * params.nheads + bidh) * params.m_blocks + m_block;
        float* tile = params.dq_accum + row_offset(params, bidb, bidh, m_block) * kHeadDim;
        --steps_left;
        CUTLASS_PRAGMA_UNROLL
        for (int w = 0; w < kGroups; ++w) {
          cutlass::arch::NamedBarrier::sync(kDqSyncThreads, int(BwdNamedBarrier::kDqFull) + w);
          if (elected) {
            if (params.deterministic && w == 0) {
              int turn;
              do {
                asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(turn) : "l"(counter) : "memory");
              } while (turn != n_block);
            }
            uint32_t const src = cute::cast_smem_ptr_to_uint(smem.dq + w * DqOrder::kGroupFloats);
            asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;" ::"l"(
                             tile + w * DqOrder::kGroupFloats),
                         "r"(src), "r"(kDqGroupBytes)
                         : "memory");
            asm volatile("cp.async.bulk.commit_group;" ::: "memory");
            if (params.deterministic && w == kGroups - 1) {
              // The sum is complete in global memory before the next key tile's CTA may add.
              asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
              __threadfence();
              asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(counter), "r"(n_block + 1) : "memory");
            } else {
              asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");  // shared memory read: reusable
            }
          }
          __syncwarp();
          if (steps_left > 0) cutlass::arch::NamedBarrier::arrive(kDqSyncThreads, int(BwdNamedBarrier::kDqEmpty) + w);
        }
      }
    });
    if (elected) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");  // done before the CTA exits
  }
};

}  // namespace fa3
