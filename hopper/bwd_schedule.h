// Which work each backward CTA does. A tile is (key tile, key/value head, batch), key tile
// fastest; a tile's steps are the query tiles that see its keys, for each query head of the
// group in turn (group_size x m_blocks steps; fewer when causal). One CTA per unit of work,
// handed out by the hardware in order as SMs free up; tile t runs as CTA t, lower key tiles of
// a head first (deterministic mode's turn order relies on that).
// The last wave: with T tiles on G SMs, the last T mod G tiles would keep that many SMs busy
// for a whole tile while the others idle (16k tokens at head dim 128: 2048 tiles, 15.5 waves on
// 132 SMs). Non-causal calls (not deterministic) cut those tiles into k pieces of consecutive
// steps, one CTA each, k chosen by the cost model in BwdSplitPlan::make; the pieces add their dK
// and dV into an fp32 sum in the workspace and the last to finish stores the tile
// (bwd_split_sum.hpp). Causal tiles differ in length and are not cut. Plain C++ (host and device).
#pragma once

#include <cutlass/detail/helper_macros.hpp>

#include "bwd_tile_size.h"
#include "flash_bwd_params.h"

namespace fa3 {

struct BwdTileList {
  int n_blocks;  // key tiles per head
  int nheads_kv;
  int num_tiles;

  struct Tile {
    int n_block;
    int bidh_kv;
    int bidb;
  };
  CUTLASS_HOST_DEVICE Tile decode(int tile) const {
    int const head = tile / n_blocks;
    return {tile % n_blocks, head % nheads_kv, head / nheads_kv};
  }
};

inline BwdTileList bwd_tile_list(BwdParams const& p) {
  int const block_n = bwd_tile_size(p.headdim, p.causal).block_n;
  int const n_blocks = (p.seqlen_k + block_n - 1) / block_n;
  return {n_blocks, p.nheads_kv, n_blocks * p.nheads_kv * p.batch};
}

// One CTA's work: steps [step_begin, step_end) of tile `tile`; split: the index of the cut tile
// among the cut ones (its sum and ticket in the workspace), or -1 for a whole tile.
struct BwdUnit {
  int tile;
  int step_begin;
  int step_end;
  int split;
};

struct BwdSplitPlan {
  int num_tiles;
  int num_whole_tiles;  // tiles [0, num_whole_tiles) run whole; the rest are cut
  int pieces;           // into this many pieces each (1: nothing is cut)
  int steps_per_tile;   // for a cut tile: group_size x m_blocks (never causal)

  // A piece costs about this many steps more than its share: the pipeline's fill (its first
  // GEMMs wait for Q, K and V), adding dK and dV to the workspace, zeroing that sum.
  static constexpr int kPieceOverheadSteps = 3;
  // Shorter pieces did not pay at 2k tokens per sequence (H100, head dim 128, 26 steps per tile
  // cut in 3: 476.6 TFLOP/s against 488.0 whole, three interleaved rounds).
  static constexpr int kMinStepsPerPiece = 10;
  static constexpr int kMaxPieces = 16;

  // The number of pieces that finishes the last T mod G tiles soonest, counting the CTAs as
  // rounds of G (pieces start as SMs free up, about together after the whole tiles), if that
  // beats running them whole. Only for a tail of at least a quarter of the SMs: the SMs' finish
  // times spread over many waves, and the first to finish take a short tail's few tiles (H100,
  // head dim 64 at 16k, 4 tiles past 31 waves: 535.1 TFLOP/s whole, 533.6 cut in 16).
  static BwdSplitPlan make(int num_tiles, int num_sms, int steps_per_tile, bool enabled) {
    int const tail = num_tiles % num_sms;
    BwdSplitPlan plan{num_tiles, num_tiles, 1, steps_per_tile};
    if (!enabled || tail * 4 < num_sms) return plan;
    double best = 1.0;  // the tail run whole: one round of whole tiles
    for (int k = 2; k <= kMaxPieces && steps_per_tile / k >= kMinStepsPerPiece; ++k) {
      int const rounds = (tail * k + num_sms - 1) / num_sms;
      double const cost = rounds * (1.0 / k + double(kPieceOverheadSteps) / steps_per_tile);
      if (cost < best) {
        best = cost;
        plan.pieces = k;
      }
    }
    if (plan.pieces > 1) plan.num_whole_tiles = num_tiles - tail;
    return plan;
  }

  CUTLASS_HOST_DEVICE int num_split_tiles() const { return num_tiles - num_whole_tiles; }
  CUTLASS_HOST_DEVICE int num_ctas() const { return num_whole_tiles + num_split_tiles() * pieces; }

  // The pieces of a cut tile are consecutive CTAs.
  CUTLASS_HOST_DEVICE BwdUnit unit(int cta) const {
    if (cta < num_whole_tiles) return {cta, 0, kAllSteps, -1};
    int const piece = cta - num_whole_tiles;
    int const split = piece / pieces;
    int const part = piece % pieces;
    return {num_whole_tiles + split, steps_per_tile * part / pieces, steps_per_tile * (part + 1) / pieces, split};
  }
  static constexpr int kAllSteps = 1 << 30;  // a whole tile's step_end (its count depends on the mask)
};

// The plan for p on num_sms SMs, m_blocks query tiles per head (bwd_workspace_layout holds it:
// the cut tiles' part of the workspace follows from it).
inline BwdSplitPlan bwd_split_plan(BwdParams const& p, int m_blocks, int num_sms) {
  return BwdSplitPlan::make(bwd_tile_list(p).num_tiles, num_sms, p.nheads / p.nheads_kv * m_blocks,
                            !p.causal && !p.deterministic);
}

// A cut tile's fp32 sum of dK and dV.
constexpr int64_t bwd_split_sum_floats(int block_n, int head_dim) { return 2 * int64_t(block_n) * head_dim; }

// The steps of a unit: query tiles [m_begin, m_end) of each query head of the group in turn,
// numbered from 0; the unit runs steps [begin, end).
struct BwdSteps {
  int m_begin;
  int m_end;
  int begin;
  int end;

  CUTLASS_HOST_DEVICE static BwdSteps of(BwdUnit const& unit, int m_begin, int m_end, int group_size) {
    int const total = m_end > m_begin ? group_size * (m_end - m_begin) : 0;
    return {m_begin, m_end, unit.step_begin, unit.step_end < total ? unit.step_end : total};
  }
  CUTLASS_HOST_DEVICE bool empty() const { return begin >= end; }
  CUTLASS_HOST_DEVICE int count() const { return end - begin; }

  // f(g, m_first, m_last): the unit's query tiles [m_first, m_last) of query head g of the group,
  // for each head it touches, in order. (Not to be called on an empty unit.)
  template <class F>
  CUTLASS_HOST_DEVICE void for_each_head(F&& f) const {
    int const per_head = m_end - m_begin;
    for (int g = begin / per_head; g * per_head < end; ++g) {
      int const lo = begin > g * per_head ? begin - g * per_head : 0;
      int const hi = end < (g + 1) * per_head ? end - g * per_head : per_head;
      f(g, m_begin + lo, m_begin + hi);
    }
  }
};

}  // namespace fa3
