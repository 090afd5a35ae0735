// Which (query tile, head, batch) a CTA works on. One CTA per tile for now; the query tiles
// are handed out last-first so that, when causal, the longest tiles start first.
#pragma once

#include <cutlass/cutlass.h>

#include "flash_params.h"

namespace fa3 {

struct SingleTileScheduler {
  struct Params {
    int num_m_blocks;
    int nheads;
    int batch;
  };

  struct Tile {
    int m_block;
    int bidh;
    int bidb;
  };

  static Params to_underlying_arguments(FwdParams const& p, int block_m) {
    return {(p.seqlen_q + block_m - 1) / block_m, p.nheads, p.batch};
  }

  static dim3 grid(Params const& params) {
    return dim3(static_cast<unsigned>(params.num_m_blocks), static_cast<unsigned>(params.nheads),
                static_cast<unsigned>(params.batch));
  }

  CUTLASS_DEVICE static Tile tile(Params const& params) {
    return {params.num_m_blocks - 1 - int(blockIdx.x), int(blockIdx.y), int(blockIdx.z)};
  }
};

}  // namespace fa3
