// Forward tile sizes and scheduling per head dim, in one table. kBlockM rows of Q per CTA (64
// per consumer warpgroup), kBlockN keys per mainloop step, kStages K/V buffers in shared memory.
// Smem: Q kBlockM*D + (K + V) kStages*kBlockN*D elements must fit in 227 KB.
//
// Measured on the H100 (bf16, 16k tokens, TFLOP/s, fa3 vs cuDNN in the same run; benchmarks/
// results and the closing notes have the full tables; run-to-run spread is about 5%):
//   hdim 64:  128x128 462 (16k), 394 (2k)   ->  128x192 474 (16k), 388 (2k)
//             128x192 -> 192x128 with three consumer warpgroups (160 registers each), one
//             device call (ab_patch.sh, interleaved rounds), fa3/cuDNN: 2k 0.934 -> 0.996,
//             16k 1.038 -> 1.116; causal 2k 0.783 -> 0.872, 16k 1.064 -> 1.103.
//   hdim 128: 128x128 615 (16k), 495 (2k)   ->  128x176 646 (16k), 482 (2k)
//   hdim 256: 128x80 704 (16k); 128x64 614: 80 is kept (64 was only tried to avoid spills
//             in the persistent loop, and the persistent loop is not used for hdim 256).
// Persistent scheduling (static, stride #SMs): hdim 128 non-causal 2k 482 -> 505, 16k ~same;
// causal 16k 629 -> 434 (hdim 128) and 680 -> 410 (256): static strides let CTAs drift across
// heads when tile lengths differ, and K/V stop being shared in L2. So: persistent for non-causal
// hdim <= 128, one CTA per tile otherwise.
#pragma once

#include "flash_params.h"
#include "stream_k_plan.h"

namespace fa3 {

struct FwdTileSize {
  int block_m;
  int block_n;
  int stages;
};

// FP8 (e4m3, O in 16 bits; FA3's FP8 tiles): 1-byte K and V give room for longer key tiles. The
// FP8 quantization blocks are these tiles: block_m query rows for Q, block_n keys for K and V.
// Head dim 128, 2 -> 3 K/V stages (the GEMMs take half as long as in bf16, so loads need more
// lead; two device runs, FP8 kernel / cuDNN bf16 in each): 2k 665 -> 702 TFLOP/s (1.14 -> 1.17),
// 16k 847 -> 867 (1.37 -> 1.43), causal 16k 821 -> 834 (1.40 -> 1.44). Head dim 64 with 3 stages
// lost (interleaved A/B, medians: 16k 649 -> 638, causal 16k 563 -> 557, 2k 522 -> 520;
// ..._ab_fp8_hdim64_3_stages.txt); head dim 256 has no room for 3. Head dim 64 on 128x256 tiles
// (two consumer warpgroups, pingpong; 11% fewer instructions per score) lost to 192x160: 16k 598
// -> 516, 2k 522 -> 456, causal 563 -> 538 (..._ab_fp8_softmax_order.txt). Head dim 128, 224 -> 192 keys
// (FA3's tile for V with keys contiguous, as our V^T is): V^T's rows are then 192 bytes, a
// 64-byte swizzle loaded in 3 TMA boxes per tile instead of 7 of 32 bytes. One A/B device call,
// three interleaved rounds, medians (TFLOP/s): 16k 888 -> 883, causal 16k 831 -> 858, 2k 635 ->
// 678 (..._ab_fp8_block_n192.txt).
constexpr FwdTileSize fwd_tile_size(int head_dim, bool fp8 = false) {
  if (fp8) {
    return head_dim <= 64    ? FwdTileSize{192, 160, 2}   // 52 KB (+24 KB for O)
           : head_dim <= 128 ? FwdTileSize{128, 192, 3}   // 160 KB (+32 KB for O)
                             : FwdTileSize{128, 128, 2};  // 160 KB (+64 KB for O)
  }
  return head_dim <= 64    ? FwdTileSize{192, 128, 2}   // 88 KB smem (+24 KB for O when persistent)
         : head_dim <= 128 ? FwdTileSize{128, 176, 2}   // 208 KB
                           : FwdTileSize{128, 80, 2};   // 224 KB
}
inline FwdTileSize fwd_tile_size(FwdParams const& p) { return fwd_tile_size(p.headdim, p.dtype == Dtype::kFloat8E4M3); }

constexpr bool fwd_persistent(int head_dim, bool causal) { return !causal && head_dim <= 128; }

// Query tiles of p: (query block, head, batch), the tile list the schedulers walk.
inline int fwd_num_m_blocks(FwdParams const& p) {
  int block_m = fwd_tile_size(p).block_m;
  return (p.seqlen_q + block_m - 1) / block_m;
}
inline int fwd_num_tiles(FwdParams const& p) { return fwd_num_m_blocks(p) * p.nheads * p.batch; }

// How the persistent kernel for p balances its last wave on num_sms SMs (stream_k_plan.h): only
// non-causal tiles are cut (they all have the same key-tile count) and only if p.stream_k. Not
// for FP8 yet: its pieces would have to be merged with their own V-descale units (softmax.hpp).
inline StreamKPlan fwd_stream_k_plan(FwdParams const& p, int num_sms) {
  FwdTileSize tile = fwd_tile_size(p);
  int num_tiles = fwd_num_tiles(p);
  bool persistent = fwd_persistent(p.headdim, p.causal);
  int num_ctas = persistent && num_tiles > num_sms ? num_sms : num_tiles;
  int steps_per_tile = (p.seqlen_k + tile.block_n - 1) / tile.block_n;
  bool cut = p.stream_k && persistent && p.dtype != Dtype::kFloat8E4M3;
  return StreamKPlan::make(num_tiles, num_ctas, steps_per_tile, cut);
}

// The GEMM schedule (fwd_options.h). Intra-warpgroup overlap everywhere; pingpong on top of it
// for non-causal head dim 128, where it wins at long sequences (bf16 TFLOP/s, overlap ->
// pingpong + overlap, same run): ecf8383 2k 579 -> 572, 8k 620 -> 652, 16k 647 -> 654;
// 3853a75 2k 557 -> 560, 8k 636 -> 650, 16k 643 -> 664; the 6730987 trial 8k 633 -> 654, 16k
// 637 -> 667 (benchmarks/results). At 1k it lost 6% once (3853a75: 516 -> 484). At
// head dim 64 and 256 it made no difference in the trial; causal runs were not measured with it.
// With the mask-free key-tile loop (4d920e4, 3 interleaved rounds) it no longer won: 2k 586 ->
// 567, 8k 650 -> 634, 16k 661 -> 660, 1k 482 -> 509. To re-measure before changing it.
constexpr FwdSchedule fwd_default_schedule(int head_dim, bool causal) {
  return head_dim == 128 && !causal ? FwdSchedule::kPingpongOverlap : FwdSchedule::kOverlap;
}

}  // namespace fa3
