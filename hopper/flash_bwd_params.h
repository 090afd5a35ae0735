// The contract between the binding and the backward kernels: pointers, element strides, sizes,
// scale and flags of one backward call (fp16/bf16). Plain C++ (no CuTe, no CUDA headers).
#pragma once

#include <cstdint>

#include "flash_params.h"

namespace fa3 {

struct BwdParams {
  const void* q;     // (batch, seqlen_q, nheads, headdim)
  const void* k;     // (batch, seqlen_k, nheads_kv, headdim)
  const void* v;     // (batch, seqlen_k, nheads_kv, headdim)
  const void* o;     // (batch, seqlen_q, nheads, headdim): the forward's output
  const void* dout;  // (batch, seqlen_q, nheads, headdim): the gradient of o
  const float* lse;  // (batch, nheads, seqlen_q), contiguous: the forward's LSE (natural log)
  void* dq;          // (batch, seqlen_q, nheads, headdim)
  void* dk;          // (batch, seqlen_k, nheads_kv, headdim): summed over the query heads of a group
  void* dv;          // (batch, seqlen_k, nheads_kv, headdim)
  Strides3 q_stride, k_stride, v_stride, o_stride, dout_stride, dq_stride, dk_stride, dv_stride;
  int batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim;
  float softmax_scale;  // applied to QK^T
  bool causal;          // bottom-right aligned
  Dtype dtype;          // of every tensor above but lse
  // dQ is summed over key tiles by CTAs that run at once. deterministic: in key-tile order, so
  // the result is bitwise the same from run to run; otherwise in whatever order they finish.
  bool deterministic;
  // bwd_workspace_bytes() of global memory: dQ's fp32 accumulator, LSE in log2 units, D =
  // rowsum(dO * O), the deterministic mode's counters (bwd_workspace.h).
  void* workspace;
  int64_t workspace_bytes;
};

// Checks params (throws std::invalid_argument naming the field) and runs the backward on
// `stream` (a cudaStream_t): preprocess, main kernel, dQ postprocess.
void run_bwd(const BwdParams& params, void* stream);

// Bytes of workspace run_bwd needs for these sizes and flags on a device of num_sms SMs
// (pointers and strides are not read).
int64_t bwd_workspace_bytes(const BwdParams& params, int num_sms);

}  // namespace fa3
