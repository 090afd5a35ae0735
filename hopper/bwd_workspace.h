// Where the backward's scratch lives inside its one workspace allocation (Python allocates
// bwd_workspace_bytes(); run_bwd carves it). Rows are padded to whole query tiles so the main
// kernel reads and writes every tile without bounds checks: padded rows have D = 0 and an
// LSE of +inf, i.e. P = 0, and their dQ is never copied out.
#pragma once

#include <cstdint>

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
  int64_t bytes;
};

// The layout for a backward call: its query tile (bwd_tile_size: head dim, causal) sets the padding.
inline BwdWorkspaceLayout bwd_workspace_layout(BwdParams const& p) {
  BwdWorkspaceLayout w{};
  const int block_m = bwd_tile_size(p.headdim, p.causal).block_m;
  w.m_blocks = (p.seqlen_q + block_m - 1) / block_m;
  w.seqlen_q_rounded = w.m_blocks * block_m;
  const int64_t rows = int64_t(p.batch) * p.nheads * w.seqlen_q_rounded;
  auto aligned = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };  // each array 256-byte aligned
  w.dq_accum_offset = 0;
  w.lse_log2_offset = aligned(rows * p.headdim * 4);
  w.dsum_offset = w.lse_log2_offset + aligned(rows * 4);
  w.counter_offset = w.dsum_offset + aligned(rows * 4);
  w.bytes = w.counter_offset + aligned(int64_t(p.batch) * p.nheads * w.m_blocks * 4);
  return w;
}

}  // namespace fa3
