// The one contract between the binding and the kernels: pointers, element strides, sizes,
// scales and flags of a forward attention call. Plain C++ (no CuTe, no CUDA headers).
#pragma once

#include <cstdint>

namespace fa3 {

enum class Dtype : int { kFloat16 = 0, kBFloat16 = 1, kFloat8E4M3 = 2 };

// How the consumer warpgroups schedule their GEMMs (fwd_options.h). kDefault means the build's
// default for the head dim (fwd_default_schedule in tile_size.h). The other schedules exist for
// the ablation and are built for bf16, head dim 128, non-causal only.
enum class FwdSchedule : int { kDefault = 0, kPingpongOverlap = 1, kOverlap = 2, kPingpong = 3, kSerial = 4 };

// Strides of a (batch, seqlen, heads, headdim) tensor, in elements; headdim's stride is 1.
struct Strides3 {
  int64_t batch;
  int64_t row;
  int64_t head;
};

// Where the FP8 descale factor of a block lives: descale[b * batch + h * head + i * block] for
// batch b, head h and the kernel's query tile i (q) or key tile i (k, v). Zero strides give one
// factor per head (block = 0) or per tensor (all 0).
struct DescaleStrides {
  int64_t batch;
  int64_t head;
  int64_t block;
};

struct FwdParams {
  const void* q;  // (batch, seqlen_q, nheads, headdim)
  const void* k;  // (batch, seqlen_k, nheads_kv, headdim)
  // 16-bit: (batch, seqlen_k, nheads_kv, headdim). FP8: V^T as the quantization kernel writes
  // it, (batch, nheads_kv, headdim, seqlen_k_padded) with the keys relabeled in groups of 16
  // (kernel_traits.h); v_stride.row is then the stride of the head dim.
  const void* v;
  void* o;        // (batch, seqlen_q, nheads, headdim), in out_dtype
  float* lse;     // (batch, nheads, seqlen_q), contiguous
  Strides3 q_stride, k_stride, v_stride, o_stride;
  int batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim;
  float softmax_scale;       // applied to QK^T
  float softmax_scale_log2;  // softmax_scale * log2(e): the kernel works with exp2
  bool causal;               // bottom-right aligned
  Dtype dtype;               // of q, k, v
  Dtype out_dtype;           // of o: dtype for fp16/bf16 inputs, fp16 or bf16 for FP8
  // FP8 only: x ~= data * descale per block (DescaleStrides); keys of V^T padded to a multiple of 16.
  const float* q_descale;
  const float* k_descale;
  const float* v_descale;
  DescaleStrides q_descale_stride, k_descale_stride, v_descale_stride;
  int seqlen_k_padded;
  // FP8 head dim 64 only, or nullptr: Q's second e4m3 term, e4m3(Q / descale - q) (quantize_fp8.h's
  // residual), laid out as q with q_stride. The S GEMM adds q_residual K^T: Q's rounding error,
  // which bounds the FP8 error at head dim 64, drops by about 2^-4.
  const void* q_residual;
  FwdSchedule schedule;
  // Balance the persistent kernel's last wave by cutting its last tiles between CTAs
  // (stream_k_plan.h); needs fwd_workspace_bytes() of global memory at `workspace`.
  bool stream_k;
  void* workspace;
  int64_t workspace_bytes;
};

// Checks params (throws std::invalid_argument naming the field) and launches the kernel for
// (dtype, headdim, causal) on `stream` (a cudaStream_t).
void run_fwd(const FwdParams& params, void* stream);

// Bytes of workspace run_fwd needs for these sizes and flags on the current device (0: none;
// pointers and strides are not read).
int64_t fwd_workspace_bytes(const FwdParams& params);

}  // namespace fa3
