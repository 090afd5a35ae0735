// The order of dQ's fp32 partial sums inside one query tile of the accumulator (workspace) and
// of the main kernel's shared-memory staging buffer: warpgroup-major, then the dQ GEMM's
// accumulator fragment, four values per thread side by side. A consumer thread then writes
// its dQ as float4s that a warp lays down in 512 contiguous bytes (no shared-memory bank
// conflicts; row-major rows 512 B apart made every store 8-way conflicted), each warpgroup's
// half of the tile is one contiguous range (one bulk reduction each), and the postprocess,
// reading with the same thread/value numbering, gets coalesced float4 loads.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>

namespace fa3 {

template <class Traits>
struct BwdDqAccumOrder {
  static constexpr int kThreadsPerGroup = cutlass::NumThreadsPerWarpGroup;
  static constexpr int kTileFloats = Traits::kBlockM * Traits::kHeadDim;
  static constexpr int kGroupFloats = kTileFloats / Traits::kConsumerWarpGroups;  // one warpgroup's half
  static constexpr int kValuesPerThread = kGroupFloats / kThreadsPerGroup;
  static_assert(kValuesPerThread % 4 == 0, "dQ fragments are written as float4");

  // Float offset in the tile of value i (of kValuesPerThread) of consumer thread thread_idx.
  CUTLASS_HOST_DEVICE static constexpr int offset(int thread_idx, int i) {
    int const group = thread_idx / kThreadsPerGroup;
    int const t = thread_idx % kThreadsPerGroup;
    return group * kGroupFloats + ((i / 4) * kThreadsPerGroup + t) * 4 + i % 4;
  }

  // The tile coordinates of each value of thread thread_idx's dQ fragment, in the GEMM's (M, N)
  // order; row() and column() read the query row and head-dim column from one.
  CUTLASS_DEVICE static auto coordinates(int thread_idx) {
    typename Traits::TiledMmaDQ mma_dq;
    return mma_dq.get_thread_slice(thread_idx).partition_C(cute::make_identity_tensor(typename Traits::DqTile{}));
  }
  template <class Coord>
  CUTLASS_DEVICE static int row(Coord const& c) { return int(cute::get<Traits::kDqTransposed ? 1 : 0>(c)); }
  template <class Coord>
  CUTLASS_DEVICE static int column(Coord const& c) { return int(cute::get<Traits::kDqTransposed ? 0 : 1>(c)); }
};

}  // namespace fa3
