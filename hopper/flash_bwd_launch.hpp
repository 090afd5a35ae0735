// Host launcher of the backward main kernel for one (dtype, head dim, causal): builds the
// collectives' parameters (TMA descriptors included) and the plan of which CTA runs which key
// tile or piece of one (bwd_schedule.h), launches it, then the dQ postprocess.
#pragma once

#include "bwd_kernel_traits.h"
#include "bwd_tile_size.h"
#include "cuda_check.h"
#include "cutlass_element.h"
#include "epilogue_bwd_sm90.hpp"
#include "flash_bwd_instances.h"
#include "flash_bwd_kernel_sm90.hpp"
#include "flash_bwd_postprocess.hpp"
#include "mainloop_bwd_sm90.hpp"

namespace fa3 {

template <Dtype kDtype, int kHeadDim, bool kCausal>
void run_bwd_instance(BwdParams const& params, BwdWorkspaceLayout const& workspace, void* stream) {
  using Element = typename CutlassElement<kDtype>::type;
  constexpr BwdTileSize kTile = bwd_tile_size(kHeadDim, kCausal);
  using Traits = BwdKernelTraits<Element, kHeadDim, kTile.block_m, kTile.block_n>;
  using Mainloop = MainloopBwdSm90<Traits, kCausal>;
  using Epilogue = EpilogueBwdSm90<Traits>;
  using Kernel = FlashBwdKernelSm90<Traits, Mainloop, Epilogue>;
  typename Kernel::Params kernel_params{Mainloop::to_underlying_arguments(params, workspace),
                                        Epilogue::to_underlying_arguments(params),
                                        Kernel::SplitSum::to_underlying_arguments(params, workspace),
                                        bwd_tile_list(params), workspace.plan};
  auto kernel = flash_bwd_kernel<Kernel>;
  constexpr int kSmem = Kernel::kSharedStorageSize;
  FA3_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  kernel<<<workspace.plan.num_ctas(), Kernel::kThreads, kSmem, static_cast<cudaStream_t>(stream)>>>(kernel_params);
  FA3_CHECK_LAUNCH();
  run_bwd_postprocess<Traits>(params, workspace, stream);
}

}  // namespace fa3

// One line per instantiation file: both mask variants of one (dtype, head dim).
#define FA3_INSTANTIATE_BWD(DTYPE, HEADDIM)                                                          \
  template void fa3::run_bwd_instance<fa3::Dtype::DTYPE, HEADDIM, false>(                            \
      fa3::BwdParams const&, fa3::BwdWorkspaceLayout const&, void*);                                 \
  template void fa3::run_bwd_instance<fa3::Dtype::DTYPE, HEADDIM, true>(                             \
      fa3::BwdParams const&, fa3::BwdWorkspaceLayout const&, void*);
