// FA3_CUDA_CHECK: turn a failed CUDA runtime call into fa3::CudaError with the call,
// the error name and the source location. For .cu files and host launchers only.
#pragma once

#include <cuda_runtime.h>

#include "errors.h"

#define FA3_CUDA_CHECK(expr)                                                              \
  do {                                                                                    \
    cudaError_t fa3_err_ = (expr);                                                        \
    if (fa3_err_ != cudaSuccess) {                                                        \
      std::ostringstream fa3_msg_;                                                        \
      fa3_msg_ << "CUDA error " << cudaGetErrorName(fa3_err_) << " ("                     \
               << cudaGetErrorString(fa3_err_) << ") from " #expr " at " << __FILE__ << ":" \
               << __LINE__;                                                               \
      throw fa3::CudaError(fa3_msg_.str());                                               \
    }                                                                                     \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define FA3_CHECK_LAUNCH() FA3_CUDA_CHECK(cudaGetLastError())
