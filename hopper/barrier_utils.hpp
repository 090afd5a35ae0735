// Barrier helpers shared by the epilogue and the split-tile merge.
#pragma once

#include <cstdint>

#include <cute/arch/util.hpp>
#include <cutlass/cutlass.h>

namespace fa3 {

// One arrival of `count` on a PipelineTmaAsync empty barrier: what `count` consumer threads'
// consumer_release would add (with cluster size 1 the barrier counts threads). Lets one thread
// release a stage for all consumers once they are known to be done with it.
CUTLASS_DEVICE void arrive_on_empty_barrier(uint64_t* barrier, int count) {
  uint32_t addr = cute::cast_smem_ptr_to_uint(barrier);
  asm volatile(
      "{\n .reg .b64 state;\n mbarrier.arrive.release.cta.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(addr),
      "r"(count)
      : "memory");
}

}  // namespace fa3
