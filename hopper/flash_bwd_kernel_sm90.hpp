// The backward kernel: one CTA per (key tile, key/value head, batch), or per piece of a key tile
// cut in the last wave (bwd_schedule.h). Assigns warp roles (a producer warpgroup whose warp 0
// loads and warp 1 writes dQ, two consumer warpgroups), sets their register budgets, wires the
// Q/dO pipeline and the K/V barrier, and runs the mainloop, the cut tiles' sum and the epilogue
// collectives. Key tiles vary fastest in the CTA order so that lower tiles start first
// (deterministic mode relies on that order; heads first instead was measured no faster:
// benchmarks/results/2026-11-23_h100_ab_bwd_grid_order.txt).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "bwd_schedule.h"
#include "bwd_split_sum.hpp"

namespace fa3 {

template <class Traits, class Mainloop, class Epilogue>
struct FlashBwdKernelSm90 {
  static constexpr int kThreads = Traits::kThreads;
  using Pipeline = typename Mainloop::Pipeline;

  struct SharedStorage {
    typename Mainloop::SharedStorage mainloop;
    alignas(16) typename Pipeline::SharedStorage pipeline;
    alignas(16) cutlass::arch::ClusterTransactionBarrier barrier_kv;
    int split_ticket;  // BwdSplitSum's broadcast
  };
  static constexpr int kSharedStorageSize = sizeof(SharedStorage);
  static_assert(kSharedStorageSize <= 227 * 1024, "more shared memory than an SM90 CTA may have (227 KB)");

  using SplitSum = BwdSplitSum<Traits>;
  struct Params {
    typename Mainloop::Params mainloop;
    typename Epilogue::Params epilogue;
    typename SplitSum::Params split_sum;
    BwdTileList tiles;
    BwdSplitPlan plan;  // BwdWorkspaceLayout::plan; its num_ctas() is the grid
  };

  // This CTA's unit of work, its key tile, and its steps (of the query tiles that see the key
  // tile: all of them unless causal).
  struct Work {
    BwdUnit unit;
    BwdTileList::Tile tile;
    BwdSteps steps;
  };
  CUTLASS_DEVICE static Work work(Params const& params) {
    BwdUnit const unit = params.plan.unit(blockIdx.x);
    BwdTileList::Tile const tile = params.tiles.decode(unit.tile);
    return {unit, tile,
            BwdSteps::of(unit, params.mainloop.mask.m_block_begin(tile.n_block), params.mainloop.m_blocks,
                         params.mainloop.group_size)};
  }

  CUTLASS_DEVICE void operator()(Params const& params, char* smem_buf) const {
    using namespace cute;
    SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_buf);
    int const warp_group = cutlass::canonical_warp_group_idx();
    int const warp_in_group = cutlass::canonical_warp_idx_sync() % 4;
    Mainloop mainloop;

    if (warp_group == 0 && warp_in_group == 0 && cute::elect_one_sync()) {
      Mainloop::prefetch_tma_descriptors(params.mainloop);
      smem.barrier_kv.init(1);  // one arrival: the producer thread, plus K and V's transaction bytes
    }
    typename Pipeline::Params pipeline_params;
    pipeline_params.transaction_bytes = Mainloop::kStageBytes;
    pipeline_params.role = warp_group == 0 ? Pipeline::ThreadCategory::Producer : Pipeline::ThreadCategory::Consumer;
    pipeline_params.is_leader = threadIdx.x == 0;  // the producer lane elected in load()
    pipeline_params.num_consumers = Traits::kConsumerThreads;
    Pipeline pipeline(smem.pipeline, pipeline_params, Shape<_1, _1, _1>{});
    __syncthreads();  // barriers initialized before anyone waits on them

    // Each role works out the CTA's work after its register budget is set (computed before, the
    // values were spilled around the producer's 24-register budget and reloaded in every role).
    if (warp_group == 0) {
      cutlass::arch::warpgroup_reg_dealloc<Traits::kProducerRegs>();
      Work const w = work(params);
      if (warp_in_group == 0 && !w.steps.empty()) {
        auto write = cutlass::make_producer_start_state<Pipeline>();
        mainloop.load(params.mainloop, pipeline, write, smem.mainloop, smem.barrier_kv, w.tile.n_block,
                      w.tile.bidh_kv, w.tile.bidb, w.steps);
      } else if (warp_in_group == 1 && !w.steps.empty() && Mainloop::uses_dq_writer(params.mainloop)) {
        mainloop.store_dq(params.mainloop, smem.mainloop, w.tile.n_block, w.tile.bidh_kv, w.tile.bidb, w.steps);
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<Traits::kConsumerRegs>();
      Work const w = work(params);
      int const thread_idx = int(threadIdx.x) - 128;
      typename Mainloop::PipelineState read;
      typename Traits::TiledMmaDKV mma_dkv;
      auto tile_kv = Shape<Int<Traits::kBlockN>, Int<Traits::kHeadDim>>{};
      Tensor tdKrdK = partition_fragment_C(mma_dkv, tile_kv);
      Tensor tdVrdV = partition_fragment_C(mma_dkv, tile_kv);
      mainloop.mma(params.mainloop, pipeline, read, tdKrdK, tdVrdV, thread_idx, smem.mainloop, smem.barrier_kv,
                   w.tile.n_block, w.tile.bidh_kv, w.tile.bidb, w.steps);
      if (w.unit.split >= 0 && !SplitSum{}.add_and_finish(params.split_sum, w.unit.split, params.plan.pieces, tdKrdK,
                                                           tdVrdV, thread_idx, smem.split_ticket)) {
        return;  // another piece of the tile stores it
      }
      Epilogue{}.store(params.epilogue, tdKrdK, tdVrdV, thread_idx, w.tile.n_block, w.tile.bidh_kv, w.tile.bidb);
    }
  }
};

template <class Kernel>
__global__ void __launch_bounds__(Kernel::kThreads, 1) flash_bwd_kernel(CUTE_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  Kernel{}(params, smem);
}

}  // namespace fa3
