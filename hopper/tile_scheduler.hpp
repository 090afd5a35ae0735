// Which (query tile, head, batch) each CTA works on; both schedulers share one tile order: the
// query tile varies fastest, so CTAs running together share a head's K and V in L2, and within
// a head the last query tiles come first (the longest ones when causal).
// - StaticPersistentScheduler: min(#tiles, #SMs) CTAs walk the tile list with stride gridDim.x,
//   so a CTA's producer loads the next tile while its consumers finish the current one.
// - SingleTileScheduler: one CTA per tile; the hardware hands out tiles in order as SMs free
//   up, which keeps concurrent tiles on the same head even when tile lengths differ (causal).
// fwd_tile_size() picks one per kernel, with the measurements that decided it.
#pragma once

#include <climits>

#include <cutlass/cutlass.h>

#include "flash_params.h"

namespace fa3 {

// The tile list and its order, shared by both schedulers.
struct TileList {
  struct Params {
    int num_m_blocks;
    int nheads;
    int num_tiles;
  };

  struct Tile {
    int m_block;
    int bidh;
    int bidb;
  };

  static Params to_underlying_arguments(FwdParams const& p, int block_m) {
    int num_m_blocks = (p.seqlen_q + block_m - 1) / block_m;
    return {num_m_blocks, p.nheads, num_m_blocks * p.nheads * p.batch};
  }

  CUTLASS_DEVICE static int first_tile() { return int(blockIdx.x); }
  CUTLASS_DEVICE static bool valid(Params const& params, int tile) { return tile < params.num_tiles; }

  CUTLASS_DEVICE static Tile decode(Params const& params, int tile) {
    int m = tile % params.num_m_blocks;
    int head = tile / params.num_m_blocks;
    return {params.num_m_blocks - 1 - m, head % params.nheads, head / params.nheads};
  }
};

struct StaticPersistentScheduler : TileList {
  static constexpr bool kPersistent = true;
  static dim3 grid(Params const& params, int num_sms) {
    return dim3(static_cast<unsigned>(params.num_tiles < num_sms ? params.num_tiles : num_sms));
  }
  CUTLASS_DEVICE static int next_tile(int tile) { return tile + int(gridDim.x); }
};

struct SingleTileScheduler : TileList {
  static constexpr bool kPersistent = false;
  static dim3 grid(Params const& params, int /*num_sms*/) { return dim3(static_cast<unsigned>(params.num_tiles)); }
  // No next tile: valid(INT_MAX) is false for any tile count, so the compiler sees the tile loop
  // run once and keeps no loop state in registers.
  CUTLASS_DEVICE static int next_tile(int /*tile*/) { return INT_MAX; }
};

}  // namespace fa3
