// Host launcher of the forward kernel for one (input type, output type, head dim, causal, schedule):
// picks the tile, builds the collectives' parameters (TMA descriptors included) and launches.
#pragma once

#include <type_traits>

#include "cuda_check.h"
#include "cutlass_element.h"
#include "device_info.h"
#include "epilogue_fwd_sm90.hpp"
#include "flash_fwd_instances.h"
#include "flash_fwd_kernel_sm90.hpp"
#include "fwd_options.h"
#include "kernel_traits.h"
#include "mainloop_fwd_sm90.hpp"
#include "split_tile_merge.hpp"
#include "tile_scheduler.hpp"
#include "tile_size.h"

namespace fa3 {

template <Dtype kDtype, Dtype kOutDtype, int kHeadDim, bool kCausal, FwdSchedule kSchedule, bool kQResidual>
void run_fwd_instance(FwdParams const& params, void* stream) {
  using Element = typename CutlassElement<kDtype>::type;
  using OutElement = typename CutlassElement<kOutDtype>::type;
  constexpr FwdTileSize kTile = fwd_tile_size(kHeadDim, kDtype == Dtype::kFloat8E4M3);
  using Traits =
      FwdKernelTraits<Element, OutElement, kHeadDim, kTile.block_m, kTile.block_n, kTile.stages, kQResidual>;
  using Mainloop = MainloopFwdSm90<Traits, kCausal, typename FwdOptionsFor<kSchedule>::type>;
  using Epilogue = EpilogueFwdSm90<Traits>;
  using Scheduler = std::conditional_t<fwd_persistent(kHeadDim, kCausal), StaticPersistentScheduler,
                                       SingleTileScheduler>;
  using Kernel = FlashFwdKernelSm90<Traits, Mainloop, Epilogue, Scheduler>;

  StreamKPlan plan = fwd_stream_k_plan(params, current_device_sm_count());  // run_fwd checked the workspace
  typename Kernel::Params kernel_params{Mainloop::to_underlying_arguments(params),
                                        Epilogue::to_underlying_arguments(params),
                                        Scheduler::to_underlying_arguments(params, plan),
                                        SplitTileMerge<Traits>::to_underlying_arguments(params.workspace, plan)};
  auto kernel = flash_fwd_kernel<Kernel>;
  constexpr int kSmem = Kernel::kSharedStorageSize;
  FA3_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  auto cuda_stream = static_cast<cudaStream_t>(stream);
  // The merge's tickets and ready flags start at zero on every launch.
  if (plan.active()) FA3_CUDA_CHECK(cudaMemsetAsync(params.workspace, 0, plan.flags_bytes(), cuda_stream));
  kernel<<<Scheduler::grid(kernel_params.scheduler), Kernel::kThreads, kSmem, cuda_stream>>>(kernel_params);
  FA3_CHECK_LAUNCH();
}

}  // namespace fa3

// One line per explicit instantiation file: both mask variants of one (input dtype, output dtype,
// head dim), each with its default schedule.
#define FA3_INSTANTIATE_FWD_MASK(DTYPE, OUT_DTYPE, HEADDIM, CAUSAL)                                      \
  template void fa3::run_fwd_instance<fa3::Dtype::DTYPE, fa3::Dtype::OUT_DTYPE, HEADDIM, CAUSAL,         \
                                      fa3::fwd_default_schedule(HEADDIM, CAUSAL)>(fa3::FwdParams const&, \
                                                                                  void*);
#define FA3_INSTANTIATE_FWD(DTYPE, OUT_DTYPE, HEADDIM)    \
  FA3_INSTANTIATE_FWD_MASK(DTYPE, OUT_DTYPE, HEADDIM, false) \
  FA3_INSTANTIATE_FWD_MASK(DTYPE, OUT_DTYPE, HEADDIM, true)
// The FP8 head dim 64 kernels that add Q's second e4m3 term (FwdParams::q_residual).
#define FA3_INSTANTIATE_FWD_Q_RESIDUAL_MASK(OUT_DTYPE, CAUSAL)                                                \
  template void fa3::run_fwd_instance<fa3::Dtype::kFloat8E4M3, fa3::Dtype::OUT_DTYPE, 64, CAUSAL,             \
                                      fa3::fwd_default_schedule(64, CAUSAL), true>(fa3::FwdParams const&, \
                                                                                   void*);
#define FA3_INSTANTIATE_FWD_Q_RESIDUAL(OUT_DTYPE)          \
  FA3_INSTANTIATE_FWD_Q_RESIDUAL_MASK(OUT_DTYPE, false) \
  FA3_INSTANTIATE_FWD_Q_RESIDUAL_MASK(OUT_DTYPE, true)
