// The one contract between the binding and the kernels: pointers, element strides, sizes,
// scales and flags of a forward attention call. Plain C++ (no CuTe, no CUDA headers).
#pragma once

#include <cstdint>

namespace fa3 {

enum class Dtype : int { kFloat16 = 0, kBFloat16 = 1 };

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

struct FwdParams {
  const void* q;  // (batch, seqlen_q, nheads, headdim)
  const void* k;  // (batch, seqlen_k, nheads_kv, headdim)
  const void* v;  // (batch, seqlen_k, nheads_kv, headdim)
  void* o;        // (batch, seqlen_q, nheads, headdim), same dtype as q
  float* lse;     // (batch, nheads, seqlen_q), contiguous
  Strides3 q_stride, k_stride, v_stride, o_stride;
  int batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim;
  float softmax_scale;       // applied to QK^T
  float softmax_scale_log2;  // softmax_scale * log2(e): the kernel works with exp2
  bool causal;               // bottom-right aligned
  Dtype dtype;
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
