// How a persistent forward kernel balances its last wave (stream-K style): with T tiles of N key
// tiles each on G CTAs, T = q*G + r, whole tiles leave r CTAs a (q+1)-th tile while G - r
// idle (hdim 128, 16k tokens: 2048 tiles on 132 SMs, 15.5 waves: 3% of the run). Instead the
// first (q-1)*G tiles are handed out whole (stride G), and the last G + r tiles are cut into
// their N*(G + r) key-tile steps, dealt to the G CTAs as equal contiguous ranges. Each range
// covers at least N steps, so a tile is cut at most once, into two pieces on neighbouring
// CTAs; split_tile_merge.hpp joins them. Plain C++ (host and device): the binding sizes the
// workspace with it, and lists a plan's work for the CPU tests.
// Measured (H100, bf16, 16k tokens, fa3 with / without, one run, fb089fe): hdim 128 16k 669 /
// 656, 2k 588 / 594; hdim 64 2k 477 / 471, 16k 527 / 531; the same kernel timed twice in that
// run differed by up to 1.6%. Whole waves (33 heads) had put the ceiling at +2% (hdim 128).
#pragma once

#include <climits>
#include <cstdint>

#include <cutlass/detail/helper_macros.hpp>

namespace fa3 {

// One unit of a CTA's work: tile `tile` of the list, its key-tile steps [step_begin, step_end)
// in visiting order (step s is key tile n_block_max - 1 - s). A whole tile has steps [0,
// kToTheEnd). split_slot >= 0 marks a piece of a tile cut in two: the workspace slot its two
// pieces meet in. tile == kNone: no more work.
struct Work {
  static constexpr int kToTheEnd = INT_MAX;
  static constexpr int kNone = INT_MAX;
  int tile;
  int step_begin;
  int step_end;
  int split_slot;
};

struct StreamKPlan {
  int num_whole_tiles;  // tiles [0, num_whole_tiles) go whole to CTA (tile mod G)
  int num_split_tiles;  // tiles after those are dealt out by key-tile steps (0: none)
  int steps_per_tile;   // N: key tiles per query tile (every tile has N: non-causal only)
  int num_ctas;         // G

  // Below this many key tiles per query tile, cutting tiles is not worth its extra prologue
  // and the partial results' round trip through global memory.
  static constexpr int kMinStepsPerTile = 4;

  static StreamKPlan make(int num_tiles, int num_ctas, int steps_per_tile, bool enabled) {
    bool balance = enabled && num_tiles > num_ctas && num_tiles % num_ctas != 0 && steps_per_tile >= kMinStepsPerTile;
    if (!balance) return {num_tiles, 0, steps_per_tile, num_ctas};
    int last_two_waves = num_ctas + num_tiles % num_ctas;
    return {num_tiles - last_two_waves, last_two_waves, steps_per_tile, num_ctas};
  }

  CUTLASS_HOST_DEVICE bool active() const { return num_split_tiles > 0; }

  // The first step of CTA `cta`'s range, counted from the first split tile's first step.
  CUTLASS_HOST_DEVICE int64_t range_begin(int cta) const {
    return int64_t(num_split_tiles) * steps_per_tile * cta / num_ctas;
  }

  // The work of CTA `cta`: whole tiles cta, cta + G, ... below num_whole_tiles, then its range
  // of split steps, one piece per tile it touches. The kernel's scheduler and the binding's
  // schedule listing (tested on the CPU) both walk it with first() and next().
  CUTLASS_HOST_DEVICE Work first(int cta) const {
    return cta < num_whole_tiles ? Work{cta, 0, Work::kToTheEnd, -1} : piece_at(cta, range_begin(cta));
  }
  CUTLASS_HOST_DEVICE Work next(int cta, Work const& work) const {
    if (work.tile < num_whole_tiles) {
      int tile = work.tile + num_ctas;
      return tile < num_whole_tiles ? Work{tile, 0, Work::kToTheEnd, -1} : piece_at(cta, range_begin(cta));
    }
    return piece_at(cta, int64_t(work.tile - num_whole_tiles) * steps_per_tile + work.step_end);
  }

  // The piece of CTA `cta`'s range that starts at split step `step` (past the range: none). The
  // tile cut at the start of a CTA's range meets in that CTA's slot.
  CUTLASS_HOST_DEVICE Work piece_at(int cta, int64_t step) const {
    int64_t range_end = range_begin(cta + 1);
    if (step >= range_end) return {Work::kNone, 0, 0, -1};
    int n = steps_per_tile;
    int tile = int(step / n);
    int begin = int(step % n);
    int end = range_end - step < n - begin ? begin + int(range_end - step) : n;
    int slot = begin > 0 ? cta : end < n ? cta + 1 : -1;
    return {num_whole_tiles + tile, begin, end, slot};
  }

  // Global memory the merge needs, one slot per CTA (the slot of CTA c holds the piece of the
  // tile cut at the start of c's range): a ticket and a ready flag (ints, zeroed before each
  // launch), then block_m x (head_dim + 8) floats per slot (O, and each consumer thread's row
  // maxima and sums: two rows per thread, two threads per row of block_m).
  static constexpr int64_t kFlagsAlign = 256;
  CUTLASS_HOST_DEVICE int64_t flags_bytes() const {
    return (2 * int64_t(num_ctas) * 4 + kFlagsAlign - 1) / kFlagsAlign * kFlagsAlign;
  }
  CUTLASS_HOST_DEVICE static constexpr int64_t slot_floats(int block_m, int head_dim) {
    return int64_t(block_m) * (head_dim + 8);
  }
  int64_t workspace_bytes(int block_m, int head_dim) const {
    return active() ? flags_bytes() + int64_t(num_ctas) * slot_floats(block_m, head_dim) * 4 : 0;
  }
};

}  // namespace fa3
