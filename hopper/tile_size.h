// Forward tile sizes per head dim, in one table. kBlockM rows of Q per CTA (64 per consumer
// warpgroup), kBlockN keys per mainloop step, kStages K/V buffers in shared memory.
// Smem: Q kBlockM*D + (K + V) kStages*kBlockN*D elements must fit in 227 KB.
// First correct version; the speed issue measures the alternatives (FA3 uses 192x128 / 128x176
// / 128x80 for hdim 64 / 128 / 256) and records them here.
#pragma once

namespace fa3 {

struct FwdTileSize {
  int block_m;
  int block_n;
  int stages;
};

constexpr FwdTileSize fwd_tile_size(int head_dim) {
  return head_dim <= 64    ? FwdTileSize{128, 192, 2}   // 112 KB smem
         : head_dim <= 128 ? FwdTileSize{128, 176, 2}   // 208 KB
                           : FwdTileSize{128, 64, 2};   // 192 KB
}

}  // namespace fa3
