// Host interface of the fused FP8 block-quantization kernel (quantize_fp8.cu). One pass over a
// (batch, seqlen, heads, headdim) fp16/bf16 tensor writes e4m3 data and one fp32 scale per
// (batch, head, block of block_size rows), optionally Hadamard-rotated (Q, K) and optionally
// as the FP8 attention kernel's V^T. The results equal python/fa3/quant (quantize_e4m3 of
// hadamard_rotate) bit for bit. Plain C++ (no CUDA or CuTe headers): the binding includes it.
#pragma once

#include "flash_params.h"

namespace fa3 {

// The largest block_size: a block lives in the registers of one CTA (8 rows per warp, at most
// 32 warps), and V^T blocks are staged in (headdim x block) bytes of shared memory.
constexpr int kQuantizeMaxBlock = 256;

struct QuantizeFp8Params {
  const void* x;       // (batch, seqlen, heads, headdim), fp16 or bf16, head dim contiguous
  Strides3 x_stride;   // of x, in elements (any values; 16-byte multiples allow vector loads)
  // e4m3 output, contiguous: (batch, seqlen, heads, headdim), or with v_layout V^T as
  // (batch, heads, headdim, seqlen_padded), seqlen_padded = ceil(seqlen / 16) * 16, the keys of
  // every 16-key group relabeled (position p holds key PERM[p], see quantize_fp8.cu) and the
  // padding keys zero.
  void* out;
  // nullptr, or a second e4m3 output laid out as out (not with v_layout): e4m3(x / scale - out),
  // what out misses, so x ~= (out + residual) * scale with about 7 significant bits.
  void* residual;
  float* scale;        // (batch, heads, ceil(seqlen / block_size)), contiguous: x ~= out * scale
  // headdim fp32 values: the random signs of the rotation divided by sqrt(headdim), as
  // hadamard_rotate multiplies by them; nullptr: no rotation.
  const float* signs;
  int batch;
  int seqlen;
  int heads;
  int headdim;         // 64, 128 or 256
  int block_size;      // 1..kQuantizeMaxBlock; a multiple of 16 with v_layout
  Dtype dtype;         // of x: kFloat16 or kBFloat16
  bool v_layout;
};

// Validates p (std::invalid_argument naming the argument) and launches on `stream` (a cudaStream_t).
void run_quantize_fp8(const QuantizeFp8Params& p, void* stream);

}  // namespace fa3
