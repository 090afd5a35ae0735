// fa3::Dtype -> the CUTLASS element type the kernels are instantiated with.
#pragma once

#include <cutlass/numeric_types.h>

#include "flash_params.h"

namespace fa3 {

template <Dtype kDtype> struct CutlassElement;
template <> struct CutlassElement<Dtype::kFloat16> { using type = cutlass::half_t; };
template <> struct CutlassElement<Dtype::kBFloat16> { using type = cutlass::bfloat16_t; };
template <> struct CutlassElement<Dtype::kFloat8E4M3> { using type = cutlass::float_e4m3_t; };

}  // namespace fa3
