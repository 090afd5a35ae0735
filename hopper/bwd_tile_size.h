// Tile of the backward kernel per head dim: kBlockN keys stay resident in a CTA (two consumer
// warpgroups, 64 keys each, hold dK and dV for them) while kBlockM query rows stream past.
// Registers set kBlockM: a consumer thread holds dK and dV (64 x headdim each / 128 threads)
// plus S^T and dP^T (64 x kBlockM each / 128). Larger query tiles make the shared-memory GEMMs
// (S^T, dP^T, dQ) read fewer bytes per FLOP: at N = 64 an m64nNk16 with both operands in shared
// memory needs as many bytes per clock as the SM's shared memory gives.
//   head dim 64: 128 rows, causal too (FlashAttention-3's tile; 32+32+64+64 registers). With
//     FlashAttention-3's step order and dQ split by rows it measured faster than 64 rows (H100,
//     16k: 491 -> 500 TFLOP/s, causal 465 -> 491, 2k 408 -> 415), then with the LSE and D read
//     where used (no spill; 12 bytes causal) 508 -> 533, causal 493 -> 510
//     (..._h100_ab_bwd_hdim64_stats_at_use.txt); before that order it measured 14.08 ms vs 11.74 (07a6a1d).
//   head dim 128: 80 rows without the mask (FlashAttention-3's; dQ transposed, LSE and D read
//     where used; 16 bytes spilled): 16k 577 -> 604 TFLOP/s, 2k 477 -> 488 (five rounds). 64 rows
//     causal: 80 measured 537 vs 563 there (..._h200_ab_bwd_fa3_order.txt), and with the LSE and D
//     read where used 566 vs 570 at 16k, 361 vs 374 at 2k (..._h100_ab_bwd_causal_80rows.txt).
// (benchmarks/results/2026-12-07_h100_ab_bwd_128rows64_80rows128.txt, ..._80rows128_more_rounds.txt)
#pragma once

namespace fa3 {

struct BwdTileSize {
  int block_m;  // query rows per step
  int block_n;  // keys per CTA
};

constexpr BwdTileSize bwd_tile_size(int headdim, bool causal) {
  return {headdim <= 64 ? 128 : causal ? 64 : 80, 128};
}

}  // namespace fa3
