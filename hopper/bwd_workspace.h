// Where the backward's scratch lives inside its one workspace allocation (Python allocates
// bwd_workspace_bytes(); run_bwd carves it). Rows are padded to whole query tiles so the main
// kernel reads and writes every tile without bounds checks: padded rows have D = 0 and an
// LSE of +inf, i.e. P = 0, and their dQ is never copied out. Key tiles cut into pieces
// (bwd_schedule.h) add a ticket and an fp32 sum of dK and dV each at the end.
#pragma once

#include <cstdint>

#include "bwd_schedule.h"
#include "bwd_tile_size.h"
#include "flash_bwd_params.h"

namespace fa3 {

struct BwdWorkspaceLayout {
  int seqlen_q_rounded;  // seqlen_q rounded up to a whole number of query tiles
  int m_blocks;
  int64_t dq_accum_offset;  // fp32 (batch, nheads, seqlen_q_rounded, headdim): sum of dS K over key tiles
  int64_t lse_log2_offset;  // fp32 (batch, nheads, seqlen_q_rounded): LSE * log2(e); +inf where P = 0
  int64_t dsum_offset;      // fp32 (batch, nheads, seqlen_q_rounded): D = rowsum(dO * O)
  int64_t counter_offset;   // int32 (batch, nheads, m_blocks): deterministic mode's turn counters
  int64_t split_tickets_offset;  // int32 per cut key tile
  int64_t split_sums_offset;     // fp32 per cut key tile: bwd_split_sum_floats()
  int64_t bytes;
  BwdSplitPlan plan;  // which key tiles are cut (bwd_split_plan); the launch runs it
};

// The layout for a backward call on num_sms SMs: its query tile (bwd_tile_size: head dim, causal)
// sets the padding, its plan (bwd_split_plan) the cut tiles' part. Everything from the counters
// on is zeroed before each launch.
inline BwdWorkspaceLayout bwd_workspace_layout(BwdParams const& p, int num_sms) {
  BwdWorkspaceLayout w{};
  const BwdTileSize tile = bwd_tile_size(p.headdim, p.causal);
  w.m_blocks = (p.seqlen_q + tile.block_m - 1) / tile.block_m;
  w.seqlen_q_rounded = w.m_blocks * tile.block_m;
  const int64_t rows = int64_t(p.batch) * p.nheads * w.seqlen_q_rounded;
  auto aligned = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };  // each array 256-byte aligned
  w.dq_accum_offset = 0;
  w.lse_log2_offset = aligned(rows * p.headdim * 4);
  w.dsum_offset = w.lse_log2_offset + aligned(rows * 4);
  w.counter_offset = w.dsum_offset + aligned(rows * 4);
  w.split_tickets_offset = w.counter_offset + aligned(int64_t(p.batch) * p.nheads * w.m_blocks * 4);
  w.plan = bwd_split_plan(p, w.m_blocks, num_sms);
  const int64_t cut = w.plan.num_split_tiles();
  w.split_sums_offset = w.split_tickets_offset + aligned(cut * 4);
  w.bytes = w.split_sums_offset + aligned(cut * bwd_split_sum_floats(tile.block_n, p.headdim) * 4);
  return w;
}

}  // namespace fa3
