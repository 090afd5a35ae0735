// The backward kernel: one CTA per (key tile, key/value head, batch). Assigns warp roles (a
// producer warpgroup whose warp 0 loads and warp 1 writes dQ, two consumer warpgroups), sets
// their register budgets, wires the Q/dO pipeline and the K/V barrier, and runs the mainloop
// and epilogue collectives. Key tiles go to blockIdx.x so that lower tiles start first
// (deterministic mode relies on that order; heads first instead was measured no faster:
// benchmarks/results/2026-11-23_h100_ab_bwd_grid_order.txt).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/pipeline/pipeline.hpp>

namespace fa3 {

template <class Traits, class Mainloop, class Epilogue>
struct FlashBwdKernelSm90 {
  static constexpr int kThreads = Traits::kThreads;
  using Pipeline = typename Mainloop::Pipeline;

  struct SharedStorage {
    typename Mainloop::SharedStorage mainloop;
    alignas(16) typename Pipeline::SharedStorage pipeline;
    alignas(16) cutlass::arch::ClusterTransactionBarrier barrier_kv;
  };
  static constexpr int kSharedStorageSize = sizeof(SharedStorage);
  static_assert(kSharedStorageSize <= 227 * 1024, "more shared memory than an SM90 CTA may have (227 KB)");

  struct Params {
    typename Mainloop::Params mainloop;
    typename Epilogue::Params epilogue;
  };

  CUTLASS_DEVICE void operator()(Params const& params, char* smem_buf) const {
    using namespace cute;
    SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_buf);
    int const warp_group = cutlass::canonical_warp_group_idx();
    int const warp_in_group = cutlass::canonical_warp_idx_sync() % 4;
    int const n_block = blockIdx.x;
    int const bidh_kv = blockIdx.y;
    int const bidb = blockIdx.z;
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

    // Query tiles that see this key tile (all of them unless causal).
    int const m_begin = params.mainloop.mask.m_block_begin(n_block);
    int const m_end = params.mainloop.m_blocks;
    if (warp_group == 0) {
      cutlass::arch::warpgroup_reg_dealloc<Traits::kProducerRegs>();
      if (warp_in_group == 0 && m_begin < m_end) {
        auto write = cutlass::make_producer_start_state<Pipeline>();
        mainloop.load(params.mainloop, pipeline, write, smem.mainloop, smem.barrier_kv, n_block, bidh_kv, bidb,
                      m_begin, m_end);
      } else if (warp_in_group == 1 && m_begin < m_end && Mainloop::uses_dq_writer(params.mainloop)) {
        mainloop.store_dq(params.mainloop, smem.mainloop, n_block, bidh_kv, bidb, m_begin, m_end);
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<Traits::kConsumerRegs>();
      int const thread_idx = int(threadIdx.x) - 128;
      typename Mainloop::PipelineState read;
      typename Traits::TiledMmaDKV mma_dkv;
      auto tile_kv = Shape<Int<Traits::kBlockN>, Int<Traits::kHeadDim>>{};
      Tensor tdKrdK = partition_fragment_C(mma_dkv, tile_kv);
      Tensor tdVrdV = partition_fragment_C(mma_dkv, tile_kv);
      mainloop.mma(params.mainloop, pipeline, read, tdKrdK, tdVrdV, thread_idx, smem.mainloop, smem.barrier_kv,
                   n_block, bidh_kv, bidb, m_begin, m_end);
      Epilogue{}.store(params.epilogue, tdKrdK, tdVrdV, thread_idx, n_block, bidh_kv, bidb);
    }
  }
};

template <class Kernel>
__global__ void __launch_bounds__(Kernel::kThreads, 1) flash_bwd_kernel(CUTE_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  Kernel{}(params, smem);
}

}  // namespace fa3
