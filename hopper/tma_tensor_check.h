// The argument check of a (batch, rows, heads, contiguous head dim) tensor that the kernels read
// or write with TMA: non-null, 16-byte aligned, strides >= 0 and multiples of 16 bytes. Shared by
// the forward and backward dispatchers (plain C++; throws std::invalid_argument naming `name`).
#pragma once

#include <cstdint>

#include "errors.h"
#include "flash_params.h"

namespace fa3 {

inline void check_tma_tensor(const void* ptr, const Strides3& s, int64_t rows, int64_t heads, int64_t batch,
                             Dtype dtype, const char* name) {
  constexpr int64_t kTmaAlignBytes = 16;
  FA3_CHECK_ARG(ptr != nullptr, name << " must not be a null pointer");
  FA3_CHECK_ARG(reinterpret_cast<std::uintptr_t>(ptr) % kTmaAlignBytes == 0,
                name << " must be 16-byte aligned (TMA), got address " << ptr);
  const int64_t align = kTmaAlignBytes / (dtype == Dtype::kFloat8E4M3 ? 1 : 2);
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

}  // namespace fa3
