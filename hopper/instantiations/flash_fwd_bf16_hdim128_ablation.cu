// The three non-default forward schedules (overlap alone, pingpong alone, neither), for the
// ablation of python -m fa3.bench --ablation: bf16, head dim 128, non-causal only.
#include "flash_fwd_launch.hpp"

template void fa3::run_fwd_instance<fa3::Dtype::kBFloat16, fa3::Dtype::kBFloat16, 128, false, fa3::FwdSchedule::kOverlap>(
    fa3::FwdParams const&, void*);
template void fa3::run_fwd_instance<fa3::Dtype::kBFloat16, fa3::Dtype::kBFloat16, 128, false, fa3::FwdSchedule::kPingpong>(
    fa3::FwdParams const&, void*);
template void fa3::run_fwd_instance<fa3::Dtype::kBFloat16, fa3::Dtype::kBFloat16, 128, false, fa3::FwdSchedule::kSerial>(
    fa3::FwdParams const&, void*);
