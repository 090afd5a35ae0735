// Q, K, V and O in global memory as the TMA descriptors see them: (seqlen, headdim, heads,
// batch), head dim contiguous, the other strides from FwdParams. One definition for the
// mainloop's loads and the epilogue's store.
#pragma once

#include <cstdint>

#include <cute/tensor.hpp>

#include "flash_params.h"

namespace fa3 {

using GmemShape = cute::Shape<int32_t, int32_t, int32_t, int32_t>;
using GmemStride = cute::Stride<int64_t, cute::_1, int64_t, int64_t>;

// (seqlen, headdim, heads, batch) of a tensor with `seqlen` rows and `heads` heads.
inline GmemShape gmem_shape(FwdParams const& p, int seqlen, int heads) {
  return cute::make_shape(seqlen, p.headdim, heads, p.batch);
}

template <class T>
auto gmem_tensor(T* ptr, GmemShape const& shape, Strides3 const& s) {
  return cute::make_tensor(cute::make_gmem_ptr(ptr), shape, cute::make_stride(s.row, cute::_1{}, s.head, s.batch));
}

template <class T>
using GmemTensor = decltype(gmem_tensor(static_cast<T*>(nullptr), GmemShape{}, Strides3{}));

}  // namespace fa3
