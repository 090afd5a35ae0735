// Compile-time switches of the forward mainloop, a tag type so each one's effect can be
// measured (python -m fa3.bench --ablation; FA3 paper, section 4.3).
#pragma once

#include "flash_params.h"

namespace fa3 {

template <bool kPingpong_, bool kIntraWGOverlap_>
struct FwdOptions {
  // Two consumer warpgroups take turns issuing GEMMs (named barriers), so one's softmax runs
  // while the other's GEMMs occupy the tensor cores.
  static constexpr bool kPingpong = kPingpong_;
  // Within a warpgroup, S_next = Q K_j^T and O += P_{j-1} V_{j-1} are in flight together; the
  // softmax of S_next overlaps the PV GEMM.
  static constexpr bool kIntraWGOverlap = kIntraWGOverlap_;
};

template <FwdSchedule kSchedule>
struct FwdOptionsFor;
template <> struct FwdOptionsFor<FwdSchedule::kPingpongOverlap> { using type = FwdOptions<true, true>; };
template <> struct FwdOptionsFor<FwdSchedule::kOverlap> { using type = FwdOptions<false, true>; };
template <> struct FwdOptionsFor<FwdSchedule::kPingpong> { using type = FwdOptions<true, false>; };
template <> struct FwdOptionsFor<FwdSchedule::kSerial> { using type = FwdOptions<false, false>; };

}  // namespace fa3
