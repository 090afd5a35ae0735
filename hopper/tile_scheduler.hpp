// Which work each CTA does: a query tile (query block, head, batch), whole or a piece of its
// key tiles. Both schedulers share one tile order: the query tile varies fastest, so CTAs
// running together share a head's K and V in L2, and within a head the last query tiles come
// first (the longest ones when causal).
// - StaticPersistentScheduler: min(#tiles, #SMs) CTAs walk the tile list with stride gridDim.x,
//   so a CTA's producer loads the next tile while its consumers finish the current one. The
//   last tiles may be cut into pieces to balance the last wave (stream_k_plan.h).
// - SingleTileScheduler: one CTA per tile; the hardware hands out tiles in order as SMs free
//   up, which keeps concurrent tiles on the same head even when tile lengths differ (causal).
// fwd_tile_size() picks one per kernel, with the measurements that decided it.
#pragma once

#include <cutlass/cutlass.h>

#include "flash_params.h"
#include "mask.hpp"
#include "stream_k_plan.h"
#include "tile_size.h"

namespace fa3 {

// The key tiles of query tile `work.tile` that `work` covers, of the n_block_max it sees.
CUTLASS_DEVICE KeyRange key_range(Work const& work, int n_block_max) {
  int end = work.step_end < n_block_max ? work.step_end : n_block_max;
  return {n_block_max - end, n_block_max - work.step_begin};
}

// The tile list and its order, shared by both schedulers.
struct TileList {
  struct Tile {
    int m_block;
    int bidh;
    int bidb;
  };

  struct Layout {
    int num_m_blocks;
    int nheads;
    int num_tiles;
  };

  static Layout layout(FwdParams const& p) { return {fwd_num_m_blocks(p), p.nheads, fwd_num_tiles(p)}; }

  CUTLASS_DEVICE static Tile decode(Layout const& l, int tile) {
    int m = tile % l.num_m_blocks;
    int head = tile / l.num_m_blocks;
    return {l.num_m_blocks - 1 - m, head % l.nheads, head / l.nheads};
  }
};

struct StaticPersistentScheduler : TileList {
  static constexpr bool kPersistent = true;

  struct Params {
    Layout tiles;
    StreamKPlan plan;
  };

  // plan: fwd_stream_k_plan() (tile_size.h); its num_ctas is the grid.
  static Params to_underlying_arguments(FwdParams const& p, StreamKPlan const& plan) {
    return {layout(p), plan};
  }
  static dim3 grid(Params const& params) { return dim3(static_cast<unsigned>(params.plan.num_ctas)); }

  CUTLASS_DEVICE static Work first(Params const& params) { return params.plan.first(int(blockIdx.x)); }
  CUTLASS_DEVICE static bool valid(Params const& params, Work const& work) { return work.tile < params.tiles.num_tiles; }
  CUTLASS_DEVICE static Work next(Params const& params, Work const& work) {
    return params.plan.next(int(blockIdx.x), work);
  }
};

struct SingleTileScheduler : TileList {
  static constexpr bool kPersistent = false;

  struct Params {
    Layout tiles;
  };

  static Params to_underlying_arguments(FwdParams const& p, StreamKPlan const& /*plan*/) {
    return {layout(p)};
  }
  static dim3 grid(Params const& params) { return dim3(static_cast<unsigned>(params.tiles.num_tiles)); }

  CUTLASS_DEVICE static Work first(Params const& /*params*/) { return {int(blockIdx.x), 0, Work::kToTheEnd, -1}; }
  CUTLASS_DEVICE static bool valid(Params const& params, Work const& work) { return work.tile < params.tiles.num_tiles; }
  // No next tile: valid() of kNone (INT_MAX) is false for any tile count, so the compiler sees
  // the tile loop run once and keeps no loop state in registers.
  CUTLASS_DEVICE static Work next(Params const& /*params*/, Work const& /*work*/) { return {Work::kNone, 0, 0, -1}; }
};

}  // namespace fa3
