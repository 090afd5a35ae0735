// Error plumbing for all host code, in plain C++ (no CUDA or CuTe headers) so that the
// pybind11 binding can include it. Bad arguments throw std::invalid_argument, which
// pybind11 turns into ValueError; CUDA failures throw fa3::CudaError (RuntimeError).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace fa3 {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fa3

// FA3_CHECK_ARG(n >= 0, "n must be >= 0, got " << n): the message is a stream expression.
#define FA3_CHECK_ARG(cond, msg)                   \
  do {                                             \
    if (!(cond)) {                                 \
      std::ostringstream fa3_msg_;                 \
      fa3_msg_ << msg;                             \
      throw std::invalid_argument(fa3_msg_.str()); \
    }                                              \
  } while (0)
