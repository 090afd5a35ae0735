// Tile of the backward kernel per head dim: kBlockN keys stay resident in a CTA (two consumer
// warpgroups, 64 keys each, hold dK and dV for them) while kBlockM query rows stream past.
// Registers set kBlockM: a consumer thread holds dK and dV (64 x headdim each / 128 threads)
// plus S^T and dP^T (64 x kBlockM each / 128): 64+64+32+32 at head dim 128 with kBlockM 64.
// Larger query tiles were measured slower at 16k (main kernel): 128 rows at head dim 64 14.08 ms
// vs 11.74, 80 rows at head dim 128 (FlashAttention-3's) 10.20 vs 8.57; both spilled even with
// dS computed from the rounded P (07a6a1d, 9159ab0). 80 rows again with FlashAttention-3's step
// order (mainloop_bwd_sm90.hpp) and dQ^T = K^T dS^T: 8 bytes spilled (28 causal), and 3% slower
// than 64 rows in the same order (558 vs 575 TFLOP/s, causal 537 vs 563;
// ..._h200_ab_bwd_fa3_order.txt, ..._bwd_fa3_order_80rows_3ec0dcd.patch).
#pragma once

namespace fa3 {

struct BwdTileSize {
  int block_m;  // query rows per step
  int block_n;  // keys per CTA
};

constexpr BwdTileSize bwd_tile_size(int /*headdim*/) { return {64, 128}; }

}  // namespace fa3
