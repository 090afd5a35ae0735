// The forward kernel: assigns warp roles (one producer warpgroup, consumer warpgroups), sets
// their register budgets, wires the K/V pipelines and the Q barrier, and runs the mainloop and
// epilogue collectives on each unit of work the (persistent) scheduler gives this CTA: a whole
// tile, or a piece of a tile cut between two CTAs, whose states meet in split_tile_merge.hpp
// before one of them writes the tile. The pipeline states and Q's barrier phase carry over
// from unit to unit.
#pragma once

#include <type_traits>

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "softmax.hpp"
#include "split_tile_merge.hpp"
#include "tile_scheduler.hpp"

namespace fa3 {

template <class Traits, class Mainloop, class Epilogue, class Scheduler>
struct FlashFwdKernelSm90 {
  static constexpr int kThreads = Traits::kThreads;
  using Pipeline = typename Mainloop::Pipeline;

  // O is staged in a V stage (epilogue_fwd_sm90.hpp). If it does not fit in one, it spans from
  // the first, which is only safe when no next tile's V may be loading meanwhile; a persistent
  // kernel gets a buffer of its own instead (three consumer warpgroups at head dim 64: O is
  // 192 rows, a V stage 128; FP8: O has twice the bytes of its input type), as does one whose O
  // exceeds all of V's buffers (FP8 head dim 64: 24 KB of O, 2 x 10 KB of V).
  static constexpr bool kOFitsInStage = Epilogue::kSmemBytes <= Traits::kVStageBytes;
  static constexpr bool kOFitsInV = Epilogue::kSmemBytes <= Traits::kVStageBytes * Traits::kStages;
  static constexpr bool kOwnOBuffer = !kOFitsInStage && (Scheduler::kPersistent || !kOFitsInV);
  struct OwnOBuffer {
    cute::array_aligned<char, Epilogue::kSmemBytes, 1024> data;
  };
  struct NoOBuffer {};

  struct SharedStorage {
    typename Mainloop::SharedStorage mainloop;
    std::conditional_t<kOwnOBuffer, OwnOBuffer, NoOBuffer> o;
    alignas(16) typename Pipeline::SharedStorage pipeline_k;
    alignas(16) typename Pipeline::SharedStorage pipeline_v;
    alignas(16) cutlass::arch::ClusterTransactionBarrier barrier_q;
    int split_ticket;  // a split tile's ticket, shared by the consumer threads
  };
  static constexpr int kSharedStorageSize = sizeof(SharedStorage);
  static_assert(kSharedStorageSize <= 227 * 1024, "more shared memory than an SM90 CTA may have (227 KB)");

  struct Params {
    typename Mainloop::Params mainloop;
    typename Epilogue::Params epilogue;
    typename Scheduler::Params scheduler;
    typename SplitTileMerge<Traits>::Params merge;
  };

  CUTLASS_DEVICE void operator()(Params const& params, char* smem_buf) const {
    using namespace cute;
    SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_buf);
    int const warp_group = cutlass::canonical_warp_group_idx();
    int const warp_in_group = cutlass::canonical_warp_idx_sync() % 4;
    bool const elected = cute::elect_one_sync();
    Mainloop mainloop;

    if (warp_group == 0 && warp_in_group == 0 && elected) {
      Mainloop::prefetch_tma_descriptors(params.mainloop);
      Epilogue::prefetch_tma_descriptors(params.epilogue);
      smem.barrier_q.init(1);  // one arrival: the producer thread, plus Q's transaction bytes
    }
    typename Pipeline::Params pipeline_params;
    pipeline_params.transaction_bytes = Mainloop::kTmaBytesKV;
    pipeline_params.role = warp_group == 0 ? Pipeline::ThreadCategory::Producer : Pipeline::ThreadCategory::Consumer;
    pipeline_params.is_leader = threadIdx.x == 0;  // the producer thread elected below
    pipeline_params.num_consumers = Traits::kConsumerThreads;
    Pipeline pipeline_k(smem.pipeline_k, pipeline_params, Shape<_1, _1, _1>{});
    Pipeline pipeline_v(smem.pipeline_v, pipeline_params, Shape<_1, _1, _1>{});
    __syncthreads();  // barriers initialized before anyone waits on them

    typename Scheduler::Params const& sched = params.scheduler;
    if (warp_group == 0) {
      cutlass::arch::warpgroup_reg_dealloc<Traits::kProducerRegs>();
      if (warp_in_group == 0) {  // one producer warp; the other three have nothing to do
        auto write = cutlass::make_producer_start_state<Pipeline>();
        bool q_loaded = false;
        for (Work w = Scheduler::first(sched); Scheduler::valid(sched, w); w = Scheduler::next(sched, w)) {
          typename Scheduler::Tile tile = Scheduler::decode(sched.tiles, w.tile);
          KeyRange keys = key_range(w, params.mainloop.mask.n_block_max(tile.m_block));
          if (keys.end <= keys.begin) continue;  // consumers write zeros alone
          mainloop.load(params.mainloop, pipeline_k, pipeline_v, write, smem.mainloop, smem.barrier_q, tile.m_block,
                        tile.bidh, tile.bidb, keys, /*wait_query_empty=*/q_loaded);
          q_loaded = true;
        }
        if (q_loaded) Mainloop::sync_query_empty();  // matches the consumers' arrival on the last tile
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<Traits::kConsumerRegs>();
      int const thread_idx = int(threadIdx.x) - 128;
      typename Mainloop::PipelineState read;
      typename Traits::TiledMmaPV mma_pv;
      int q_phase = 0;
      for (Work w = Scheduler::first(sched); Scheduler::valid(sched, w); w = Scheduler::next(sched, w)) {
        typename Scheduler::Tile tile = Scheduler::decode(sched.tiles, w.tile);
        KeyRange keys = key_range(w, params.mainloop.mask.n_block_max(tile.m_block));
        Tensor tOrO = partition_fragment_C(mma_pv, select<0, 2>(typename Traits::TileShape{}));
        OnlineSoftmax<2 * size<1>(decltype(tOrO){}), Traits::kFp8, Traits::kSoftmaxChains,
                      Mainloop::kFmaExp2Every>
            softmax;
        auto result = mainloop.mma(params.mainloop, pipeline_k, pipeline_v, read, tOrO, softmax, thread_idx,
                                   smem.mainloop, smem.barrier_q, q_phase, tile.m_block, tile.bidh, tile.bidb, keys);
        if (result.visited) q_phase ^= 1;
        // A tile that sees no key loaded nothing (only possible when causal, i.e. not persistent):
        // all of V's buffers are free, and there is no stage to release.
        int o_stage = kOFitsInStage ? result.last_v_stage : 0;
        uint64_t* stage_empty =
            result.visited ? reinterpret_cast<uint64_t*>(&smem.pipeline_v.empty_barrier_[result.last_v_stage]) : nullptr;
        // (FP8 tiles are never cut: fwd_stream_k_plan.)
        if constexpr (Scheduler::kPersistent && !Traits::kFp8) {
          if (w.split_slot >= 0 && !SplitTileMerge<Traits>{}.merge_or_park(params.merge, w.split_slot,
                                                                            w.step_begin == 0, tOrO, softmax,
                                                                            thread_idx, smem.split_ticket, stage_empty)) {
            continue;  // the other piece's CTA writes this tile
          }
        }
        char* smem_o = reinterpret_cast<char*>(smem.mainloop.v.data()) + o_stage * Traits::kVStageBytes;
        if constexpr (kOwnOBuffer) smem_o = smem.o.data.data();
        Epilogue{}.store(params.epilogue, tOrO, softmax, thread_idx, tile.m_block, tile.bidh, tile.bidb, smem_o,
                         stage_empty);
      }
    }
  }
};

template <class Kernel>
__global__ void __launch_bounds__(Kernel::kThreads, 1) flash_fwd_kernel(CUTE_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  Kernel{}(params, smem);
}

}  // namespace fa3
