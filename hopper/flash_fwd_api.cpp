// run_fwd: checks a FwdParams (every message names the field) and dispatches to the compiled
// kernel for its (dtype, output dtype, head dim, causal). Plain C++: the kernels are behind
// flash_fwd_instances.h. Python validates first; these checks guard direct callers of fa3._C.
#include <cstdint>

#include "device_info.h"
#include "errors.h"
#include "flash_fwd_instances.h"
#include "flash_params.h"
#include "tile_size.h"
#include "tma_tensor_check.h"

namespace fa3 {
namespace {

void check_descales(const float* ptr, const DescaleStrides& s, const char* name) {
  FA3_CHECK_ARG(ptr != nullptr, name << " must not be a null pointer (FP8 inputs need descale factors)");
  FA3_CHECK_ARG(s.batch >= 0 && s.head >= 0 && s.block >= 0 && s.block <= INT32_MAX,
                name << " strides must be >= 0 (the block stride < 2^31), got (" << s.batch << ", " << s.head << ", "
                     << s.block << ")");
}

template <Dtype kDtype, Dtype kOutDtype, int kHeadDim, bool kQResidual = false>
void run_causal_or_not(const FwdParams& p, void* stream) {
  if (p.causal) {
    run_fwd_instance<kDtype, kOutDtype, kHeadDim, true, fwd_default_schedule(kHeadDim, true), kQResidual>(p, stream);
  } else {
    run_fwd_instance<kDtype, kOutDtype, kHeadDim, false, fwd_default_schedule(kHeadDim, false), kQResidual>(p,
                                                                                                          stream);
  }
}

// The non-default schedules exist for bf16, head dim 128, non-causal only (instantiations/
// flash_fwd_bf16_hdim128_ablation.cu).
void run_ablation(const FwdParams& p, FwdSchedule schedule, void* stream) {
  FA3_CHECK_ARG(p.dtype == Dtype::kBFloat16 && p.out_dtype == Dtype::kBFloat16 && p.headdim == 128 && !p.causal,
                "schedule " << static_cast<int>(schedule)
                            << " (ablation) is built for bf16, headdim 128, non-causal only");
  switch (schedule) {
    case FwdSchedule::kOverlap:
      return run_fwd_instance<Dtype::kBFloat16, Dtype::kBFloat16, 128, false, FwdSchedule::kOverlap>(p, stream);
    case FwdSchedule::kPingpong:
      return run_fwd_instance<Dtype::kBFloat16, Dtype::kBFloat16, 128, false, FwdSchedule::kPingpong>(p, stream);
    case FwdSchedule::kSerial:
      return run_fwd_instance<Dtype::kBFloat16, Dtype::kBFloat16, 128, false, FwdSchedule::kSerial>(p, stream);
    default:
      FA3_CHECK_ARG(false, "schedule " << static_cast<int>(schedule) << " has no ablation build");
  }
}

template <Dtype kDtype, Dtype kOutDtype>
void run_head_dim(const FwdParams& p, void* stream) {
  switch (p.headdim) {
    case 64:
      // Q's second e4m3 term (FwdParams::q_residual): FP8 head dim 64 only, its own kernels.
      if constexpr (kDtype == Dtype::kFloat8E4M3) {
        if (p.q_residual != nullptr) return run_causal_or_not<kDtype, kOutDtype, 64, true>(p, stream);
      }
      return run_causal_or_not<kDtype, kOutDtype, 64>(p, stream);
    case 128: return run_causal_or_not<kDtype, kOutDtype, 128>(p, stream);
    case 256: return run_causal_or_not<kDtype, kOutDtype, 256>(p, stream);
    default: FA3_CHECK_ARG(false, "headdim must be 64, 128 or 256, got " << p.headdim);
  }
}

}  // namespace

int64_t fwd_workspace_bytes(const FwdParams& p) {
  return fwd_stream_k_plan(p, current_device_sm_count()).workspace_bytes(fwd_tile_size(p).block_m, p.headdim);
}

void run_fwd(const FwdParams& p, void* stream) {
  FA3_CHECK_ARG(p.batch >= 1 && p.batch <= 65535, "batch must be in [1, 65535], got " << p.batch);
  FA3_CHECK_ARG(p.seqlen_q >= 1, "seqlen_q must be >= 1, got " << p.seqlen_q);
  FA3_CHECK_ARG(p.seqlen_k >= 1, "seqlen_k must be >= 1, got " << p.seqlen_k);
  FA3_CHECK_ARG(p.nheads >= 1 && p.nheads <= 65535, "nheads must be in [1, 65535], got " << p.nheads);
  FA3_CHECK_ARG(p.nheads_kv >= 1 && p.nheads % p.nheads_kv == 0,
                "nheads (" << p.nheads << ") must be a multiple of nheads_kv (" << p.nheads_kv << ")");
  FA3_CHECK_ARG(p.headdim == 64 || p.headdim == 128 || p.headdim == 256,
                "headdim must be 64, 128 or 256, got " << p.headdim);
  const int dtype = static_cast<int>(p.dtype);
  FA3_CHECK_ARG(dtype >= 0 && dtype <= 2, "dtype must be 0 (fp16), 1 (bf16) or 2 (e4m3), got " << dtype);
  const bool fp8 = p.dtype == Dtype::kFloat8E4M3;
  if (fp8) {
    FA3_CHECK_ARG(p.out_dtype == Dtype::kFloat16 || p.out_dtype == Dtype::kBFloat16,
                  "out_dtype must be 0 (fp16) or 1 (bf16) for e4m3 inputs, got " << static_cast<int>(p.out_dtype));
    FA3_CHECK_ARG(p.seqlen_k_padded >= p.seqlen_k && p.seqlen_k_padded % 16 == 0,
                  "seqlen_k_padded must be seqlen_k (" << p.seqlen_k << ") rounded up to a multiple of 16, got "
                                                       << p.seqlen_k_padded);
    check_descales(p.q_descale, p.q_descale_stride, "q_descale");
    check_descales(p.k_descale, p.k_descale_stride, "k_descale");
    check_descales(p.v_descale, p.v_descale_stride, "v_descale");
    FA3_CHECK_ARG(p.q_residual == nullptr || p.headdim == 64,
                  "q_residual is supported at headdim 64 only, got headdim " << p.headdim);
    if (p.q_residual != nullptr) {
      check_tma_tensor(p.q_residual, p.q_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "q_residual");
    }
  } else {
    FA3_CHECK_ARG(p.q_residual == nullptr, "q_residual is for e4m3 inputs only (dtype 2)");
    FA3_CHECK_ARG(p.out_dtype == p.dtype, "out_dtype must equal dtype (" << dtype << ") for fp16/bf16 inputs, got "
                                                                         << static_cast<int>(p.out_dtype));
  }
  check_tma_tensor(p.q, p.q_stride, p.seqlen_q, p.nheads, p.batch, p.dtype, "q");
  check_tma_tensor(p.k, p.k_stride, p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "k");
  // FP8 V is V^T: (batch, head dim rows, heads) around the contiguous padded keys.
  check_tma_tensor(p.v, p.v_stride, fp8 ? p.headdim : p.seqlen_k, p.nheads_kv, p.batch, p.dtype, "v");
  check_tma_tensor(p.o, p.o_stride, p.seqlen_q, p.nheads, p.batch, p.out_dtype, "o");
  FA3_CHECK_ARG(p.lse != nullptr, "lse must not be a null pointer");
  const int64_t workspace_bytes = fwd_workspace_bytes(p);
  FA3_CHECK_ARG(p.workspace_bytes >= workspace_bytes && (workspace_bytes == 0 || p.workspace != nullptr),
                "workspace must hold " << workspace_bytes << " bytes (fwd_workspace_bytes), got "
                                       << p.workspace_bytes << " at " << p.workspace);
  FA3_CHECK_ARG(reinterpret_cast<std::uintptr_t>(p.workspace) % 16 == 0,
                "workspace must be 16-byte aligned, got address " << p.workspace);
  FA3_CHECK_ARG(static_cast<int>(p.schedule) >= 0 && static_cast<int>(p.schedule) <= 4,
                "schedule must be in [0, 4], got " << static_cast<int>(p.schedule));
  const FwdSchedule by_default = fwd_default_schedule(p.headdim, p.causal);
  const FwdSchedule schedule = p.schedule == FwdSchedule::kDefault ? by_default : p.schedule;
  if (schedule != by_default) return run_ablation(p, schedule, stream);
  switch (p.dtype) {
    case Dtype::kFloat16: return run_head_dim<Dtype::kFloat16, Dtype::kFloat16>(p, stream);
    case Dtype::kBFloat16: return run_head_dim<Dtype::kBFloat16, Dtype::kBFloat16>(p, stream);
    case Dtype::kFloat8E4M3:
      if (p.out_dtype == Dtype::kFloat16) return run_head_dim<Dtype::kFloat8E4M3, Dtype::kFloat16>(p, stream);
      return run_head_dim<Dtype::kFloat8E4M3, Dtype::kBFloat16>(p, stream);
  }
}

}  // namespace fa3
