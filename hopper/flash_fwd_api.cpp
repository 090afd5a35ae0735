// run_fwd: checks a FwdParams (every message names the field) and dispatches to the compiled
// kernel for its (dtype, head dim, causal). Plain C++: the kernels are behind
// flash_fwd_instances.h. Python validates first; these checks guard direct callers of fa3._C.
#include <cstdint>

#include "device_info.h"
#include "errors.h"
#include "flash_fwd_instances.h"
#include "flash_params.h"
#include "tile_size.h"

namespace fa3 {
namespace {

constexpr int64_t kTmaAlignBytes = 16;
constexpr int64_t kElementBytes = 2;  // fp16 and bf16

void check_tensor(const void* ptr, const Strides3& s, int64_t rows, int64_t heads, int64_t batch, const char* name) {
  FA3_CHECK_ARG(ptr != nullptr, name << " must not be a null pointer");
  FA3_CHECK_ARG(reinterpret_cast<std::uintptr_t>(ptr) % kTmaAlignBytes == 0,
                name << " must be 16-byte aligned (TMA), got address " << ptr);
  const int64_t align = kTmaAlignBytes / kElementBytes;
  const int64_t sizes[3] = {batch, rows, heads};
  const int64_t strides[3] = {s.batch, s.row, s.head};
  const char* labels[3] = {"batch", "row", "head"};
  for (int i = 0; i < 3; ++i) {
    FA3_CHECK_ARG(strides[i] >= 0, name << " " << labels[i] << " stride must be >= 0, got " << strides[i]);
    FA3_CHECK_ARG(sizes[i] == 1 || strides[i] % align == 0,
                  name << " " << labels[i] << " stride must be a multiple of " << align
                       << " elements (16 bytes), got " << strides[i]);
  }
}

template <Dtype kDtype, int kHeadDim>
void run_causal_or_not(const FwdParams& p, void* stream) {
  if (p.causal) {
    run_fwd_instance<kDtype, kHeadDim, true, fwd_default_schedule(kHeadDim, true)>(p, stream);
  } else {
    run_fwd_instance<kDtype, kHeadDim, false, fwd_default_schedule(kHeadDim, false)>(p, stream);
  }
}

// The non-default schedules exist for bf16, head dim 128, non-causal only (instantiations/
// flash_fwd_bf16_hdim128_ablation.cu).
void run_ablation(const FwdParams& p, FwdSchedule schedule, void* stream) {
  FA3_CHECK_ARG(p.dtype == Dtype::kBFloat16 && p.headdim == 128 && !p.causal,
                "schedule " << static_cast<int>(schedule)
                            << " (ablation) is built for bf16, headdim 128, non-causal only");
  switch (schedule) {
    case FwdSchedule::kOverlap:
      return run_fwd_instance<Dtype::kBFloat16, 128, false, FwdSchedule::kOverlap>(p, stream);
    case FwdSchedule::kPingpong:
      return run_fwd_instance<Dtype::kBFloat16, 128, false, FwdSchedule::kPingpong>(p, stream);
    case FwdSchedule::kSerial:
      return run_fwd_instance<Dtype::kBFloat16, 128, false, FwdSchedule::kSerial>(p, stream);
    default:
      FA3_CHECK_ARG(false, "schedule " << static_cast<int>(schedule) << " has no ablation build");
  }
}

template <Dtype kDtype>
void run_head_dim(const FwdParams& p, void* stream) {
  switch (p.headdim) {
    case 64: return run_causal_or_not<kDtype, 64>(p, stream);
    case 128: return run_causal_or_not<kDtype, 128>(p, stream);
    case 256: return run_causal_or_not<kDtype, 256>(p, stream);
    default: FA3_CHECK_ARG(false, "headdim must be 64, 128 or 256, got " << p.headdim);
  }
}

}  // namespace

int64_t fwd_workspace_bytes(const FwdParams& p) {
  return fwd_stream_k_plan(p, current_device_sm_count()).workspace_bytes(fwd_tile_size(p.headdim).block_m, p.headdim);
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
  check_tensor(p.q, p.q_stride, p.seqlen_q, p.nheads, p.batch, "q");
  check_tensor(p.k, p.k_stride, p.seqlen_k, p.nheads_kv, p.batch, "k");
  check_tensor(p.v, p.v_stride, p.seqlen_k, p.nheads_kv, p.batch, "v");
  check_tensor(p.o, p.o_stride, p.seqlen_q, p.nheads, p.batch, "o");
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
    case Dtype::kFloat16: return run_head_dim<Dtype::kFloat16>(p, stream);
    case Dtype::kBFloat16: return run_head_dim<Dtype::kBFloat16>(p, stream);
  }
  FA3_CHECK_ARG(false, "dtype must be 0 (fp16) or 1 (bf16), got " << static_cast<int>(p.dtype));
}

}  // namespace fa3
