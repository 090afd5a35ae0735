// Tile of the backward kernel per head dim: kBlockN keys stay resident in a CTA (two consumer
// warpgroups, 64 keys each, hold dK and dV for them) while kBlockM query rows stream past.
// Registers set kBlockM: a consumer thread holds dK and dV (64 x headdim each / 128 threads)
// plus S^T and dP^T (64 x kBlockM each / 128): 64+64+32+32 at head dim 128 with kBlockM 64.
// Head dim 64 with kBlockM 128 (32+32+64+64 plus P^T and dS^T in 16 bits) compiled to a
// 1.6 KB stack frame and serialized WGMMAs (ptxas C7520), so it uses 64 too for now.
#pragma once

namespace fa3 {

struct BwdTileSize {
  int block_m;  // query rows per step
  int block_n;  // keys per CTA
};

constexpr BwdTileSize bwd_tile_size(int /*headdim*/) { return {64, 128}; }

}  // namespace fa3
