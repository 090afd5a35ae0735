// run_bwd: checks a BwdParams (every message names the field) and runs the backward: the
// preprocess (D, LSE in log2 units, zeroed dQ accumulator), then the main kernel and dQ
// postprocess for (dtype, head dim, causal). Plain C++: the kernels are behind
// flash_bwd_instances.h and flash_bwd_preprocess.h. Python validates first; these checks guard direct callers of fa3._C.
#include <cstdint>

#include "bwd_tile_size.h"
#include "bwd_workspace.h"
#include "device_info.h"
#include "errors.h"
#include "flash_bwd_instances.h"
#include "flash_bwd_params.h"
#include "flash_bwd_preprocess.h"
#include "tma_tensor_check.h"

namespace fa3 {
namespace {

template <Dtype kDtype, int kHeadDim>
void run_causal_or_not(const BwdParams& p, const BwdWorkspaceLayout& w, void* stream) {
  if (p.causal) return run_bwd_instance<kDtype, kHeadDim, true>(p, w, stream);
  run_bwd_instance<kDtype, kHeadDim, false>(p, w, stream);
}

template <Dtype kDtype>
void run_head_dim(const BwdParams& p, const BwdWorkspaceLayout& w, void* stream) {
  if (p.headdim == 64) return run_causal_or_not<kDtype, 64>(p, w, stream);
  run_causal_or_not<kDtype, 128>(p, w, stream);
}

}  // namespace

int64_t bwd_workspace_bytes(const BwdParams& p, int num_sms) {
  return bwd_workspace_layout(p, num_sms).bytes;
}

void run_bwd(const BwdParams& p, void* stream) {
  FA3_CHECK_ARG(p.batch >= 1 && p.batch <= 65535, "batch must be in [1, 65535], got " << p.batch);
  FA3_CHECK_ARG(p.seqlen_q >= 1, "seqlen_q must be >= 1, got " << p.seqlen_q);
  FA3_CHECK_ARG(p.seqlen_k >= 1, "seqlen_k must be >= 1, got " << p.seqlen_k);
  FA3_CHECK_ARG(p.nheads >= 1 && p.nheads <= 65535, "nheads must be in [1, 65535], got " << p.nheads);
  FA3_CHECK_ARG(p.nheads_kv >= 1 && p.nheads_kv <= 65535 && p.nheads % p.nheads_kv == 0,
                "nheads (" << p.nheads << ") must be a multiple of nheads_kv (" << p.nheads_kv << ")");
  FA3_CHECK_ARG(p.headdim == 64 || p.headdim == 128,
                "headdim must be 64 or 128 for the backward, got " << p.headdim);
  const int64_t block_n = bwd_tile_size(p.headdim, p.causal).block_n;
  const int64_t key_tiles = (p.seqlen_k + block_n - 1) / block_n * p.nheads_kv * p.batch;  // bwd_schedule.h
  FA3_CHECK_ARG(key_tiles <= INT32_MAX, "batch * nheads_kv * ceil(seqlen_k / " << block_n << ") must be <= "
                                            << INT32_MAX << " for the backward, got " << key_tiles);
  FA3_CHECK_ARG(p.dtype == Dtype::kFloat16 || p.dtype == Dtype::kBFloat16,
                "dtype must be 0 (fp16) or 1 (bf16) for the backward, got " << static_cast<int>(p.dtype));
  check_tma_tensor(p.q, p.q_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "q");
  check_tma_tensor(p.k, p.k_stride, p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "k");
  check_tma_tensor(p.v, p.v_stride, p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "v");
  check_tma_tensor(p.o, p.o_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "o");
  check_tma_tensor(p.dout, p.dout_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "dout");
  check_tma_tensor(p.dq, p.dq_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "dq");
  check_tma_tensor(p.dk, p.dk_stride, p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "dk");
  check_tma_tensor(p.dv, p.dv_stride, p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "dv");
  FA3_CHECK_ARG(p.lse != nullptr, "lse must not be a null pointer");
  // The layout (and the cut plan in it) is worked out once here for the whole call.
  const BwdWorkspaceLayout w = bwd_workspace_layout(p, current_device_sm_count());
  FA3_CHECK_ARG(p.workspace != nullptr && p.workspace_bytes >= w.bytes,
                "workspace must hold " << w.bytes << " bytes (bwd_workspace_bytes), got "
                                       << p.workspace_bytes << " at " << p.workspace);
  FA3_CHECK_ARG(reinterpret_cast<std::uintptr_t>(p.workspace) % 256 == 0,
                "workspace must be 256-byte aligned, got address " << p.workspace);
  run_bwd_preprocess(p, w, stream);
  if (p.dtype == Dtype::kFloat16) {
    run_head_dim<Dtype::kFloat16>(p, w, stream);
  } else {
    run_head_dim<Dtype::kBFloat16>(p, w, stream);
  }
}

}  // namespace fa3
