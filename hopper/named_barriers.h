// Named-barrier IDs of the forward and backward kernels, in one place. cutlass::arch::NamedBarrier adds its 8
// reserved IDs, so these must stay in [0, 8).
#pragma once

namespace fa3 {

enum class FwdNamedBarrier : int {
  // Pingpong: consumer warpgroup g waits on barrier (WarpSchedulerWG1 + g - 1) before issuing its
  // GEMMs and then arrives on the other warpgroup's, so their GEMMs take turns on the tensor cores.
  kWarpSchedulerWG1 = 0,
  kWarpSchedulerWG2 = 1,
  // Persistent kernel: the consumers arrive once they no longer read Q (their last QK^T GEMM is
  // done); the producer waits on it before loading the next tile's Q into the same buffer.
  kQueryEmpty = 2,
  // Epilogue: all consumer threads, before writing O into the shared buffer their last PV GEMMs
  // read, and again before the TMA store reads it.
  kEpilogue = 3,
  // Split-tile merge (split_tile_merge.hpp): all consumer threads, around the ticket and the
  // parked state of a tile cut between two CTAs.
  kSplitTile = 4,
};

enum class BwdNamedBarrier : int {
  // All consumer threads: this step's dS is in shared memory (both warpgroups' keys), so the
  // dQ = dS K GEMMs may read it.
  kDsReady = 0,
  // dQ's shared-memory buffer between the consumers and the dQ writer warp, one pair per
  // consumer warpgroup g (ID + g): full (the warpgroup arrives once it wrote a step's dQ half,
  // the writer waits), empty (the writer arrives once the bulk reduction has read it, the
  // warpgroup waits before writing the next).
  kDqFull = 1,   // 1, 2
  kDqEmpty = 3,  // 3, 4
  // Cut key tiles (bwd_split_sum.hpp): all consumer threads, around a piece's ticket.
  kSplitTile = 5,
};

}  // namespace fa3
