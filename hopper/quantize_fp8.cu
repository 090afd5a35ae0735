// Fused FP8 block quantization (interface and output layouts: quantize_fp8.h). The results equal
// python/fa3/quant's quantize_e4m3(hadamard_rotate(x)) bit for bit.
//
// One CTA per (block, head, batch). A warp holds 8 rows of the block, so a block of n rows takes
// ceil(n / 8) warps (at most 32). A row is spread over d/8 lanes with 8 contiguous values each
// (one 16-byte load), so one warp-wide load covers 256/d rows and d/32 loads per thread hold the
// warp's 8 rows. The raw 16-bit input stays in registers: memory is read once and written once.
//   pass 1: widen to fp32 (and rotate), max |y| over the CTA -> the block's scale;
//   pass 2: widen (and rotate) again, divide by the scale, cast to e4m3, store (V^T: via smem).
// At head dims 128 and 256 pass 2 rotates again rather than keep the fp32 values: the 16-bit
// input takes half the registers, and that is what lets a block of 256 rows of 256 values stay
// on chip. Head dim 64 keeps them (16 floats per thread).
//
// Bit-exactness: --use_fast_math flushes subnormals (.ftz), makes '/' approximate and lets the
// compiler fuse a * b + c; the reference does none of that. So every float operation on data goes
// through inline PTX with explicit round-to-nearest and no .ftz, which nvcc can neither contract
// nor flush; the amax is taken on bit patterns, which orders subnormals, Inf and NaN exactly.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <cstdint>

#include "cuda_check.h"
#include "quantize_fp8.h"

namespace fa3 {
namespace {

constexpr int kRowsPerWarp = 8;
constexpr int kMaxThreads = kQuantizeMaxBlock / kRowsPerWarp * 32;
constexpr float kE4m3Max = 448.0f;
constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;
constexpr uint32_t kFltMinBits = 0x00800000u;  // FLT_MIN, the smallest normal float
constexpr uint32_t kE4m3NaN = 0x7fu;           // the NaN that torch's fp32 -> e4m3fn cast gives for +NaN

// How a row of kHeadDim values is spread over a warp (see the top of the file).
template <int kHeadDim>
struct RowTiling {
  static constexpr int kLanesPerRow = kHeadDim / 8;
  static constexpr int kRowsPerLoad = 32 / kLanesPerRow;
  static constexpr int kLoads = kRowsPerWarp / kRowsPerLoad;
  static_assert(kHeadDim == 64 || kHeadDim == 128 || kHeadDim == 256, "head dims 64, 128, 256");
};

struct KernelArgs {
  const uint16_t* x;  // fp16 or bf16 bits
  Strides3 x_stride;
  uint8_t* out;
  uint8_t* residual;  // nullptr: none; else (x / scale - out) in e4m3, laid out as out (not V^T)
  float* scale;
  const float* signs;  // nullptr: no rotation
  int seqlen;
  int heads;
  int block_size;
  int seqlen_pad;   // V^T: keys per (batch, head, head-dim) row of out
  int stage_pitch;  // V^T: bytes per head-dim row of the shared-memory stage
  bool vec16;       // x and its strides allow 16-byte loads
  bool v_layout;
};

__device__ __forceinline__ float add_rn(float a, float b) {
  float r;
  asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

__device__ __forceinline__ float sub_rn(float a, float b) {
  float r;
  asm("sub.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

__device__ __forceinline__ float mul_rn(float a, float b) {
  float r;
  asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// a * s + c with one rounding; with s = +-1 the product is exact, so this is RN(c +- a): an add
// or a subtract picked by a register instead of a branch or a sign flip.
__device__ __forceinline__ float fma_rn(float a, float s, float c) {
  float r;
  asm("fma.rn.f32 %0, %1, %2, %3;" : "=f"(r) : "f"(a), "f"(s), "f"(c));
  return r;
}
__device__ __forceinline__ float div_rn(float a, float b) {
  float r;
  asm("div.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

__device__ __forceinline__ bool is_finite(float v) { return (__float_as_uint(v) & kAbsMask) < kInfBits; }

// 8 consecutive 16-bit values; without 16-byte alignment, one at a time (a rare strided view).
__device__ __forceinline__ uint4 load8(const uint16_t* p, bool vec16) {
  if (vec16) return __ldg(reinterpret_cast<const uint4*>(p));
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) w[k] = uint32_t(__ldg(p + 2 * k)) | (uint32_t(__ldg(p + 2 * k + 1)) << 16);
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// fp16/bf16 -> fp32 is exact either way; bf16 is a shift, fp16 the cvt.f32.f16 of __half2float.
template <bool kBf16>
__device__ __forceinline__ void widen(const uint4& raw, float (&y)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (kBf16) {
      y[2 * k] = __uint_as_float(w[k] << 16);
      y[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    } else {
      y[2 * k] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[k] & 0xffffu)));
      y[2 * k + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[k] >> 16)));
    }
  }
}

// y = fwht(row) * signs for this lane's 8 columns, stage by stage as hadamard.py's fwht: each
// output of a stage is one rounded (a + b) or (a - b) of the previous stage's values, so the
// thread mapping cannot change a bit. Stages h = 1, 2, 4 pair columns inside the lane; stage
// h = 8m pairs lane L with lane L ^ m (same register). The lower column a computes a + b; the
// upper computes a - b as (-b) + a, the same IEEE result (x - y is x + (-y), + commutes), as one
// fma with -1: the product is exact, so it is the add with one rounding (and no neg.ftz, which
// a float negation would become under --use_fast_math).
template <int kLanesPerRow>
__device__ __forceinline__ void hadamard(float (&y)[8], const float (&signs)[8], int lane) {
#pragma unroll
  for (int h = 1; h < 8; h *= 2) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (!(j & h)) {
        const float a = y[j], b = y[j + h];
        y[j] = add_rn(a, b);
        y[j + h] = sub_rn(a, b);
      }
    }
  }
#pragma unroll
  for (int m = 1; m < kLanesPerRow; m *= 2) {
    const float sign = lane & m ? -1.f : 1.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float other = __shfl_xor_sync(0xffffffffu, y[j], m);
      y[j] = fma_rn(y[j], sign, other);
    }
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) y[j] = mul_rn(y[j], signs[j]);
}

// e4m3 bytes of (lo, hi), lo in the low byte: round to nearest even, finite values saturate to
// +-448 (satfinite). kMayBeNonFinite: non-finite values become NaN as in cast_e4m3 (satfinite
// alone would turn +-Inf into +-448 and may keep a NaN's sign); only NaN reaches here, from a
// NaN or Inf block. A block with a finite scale holds only finite values (|y| <= amax).
template <bool kMayBeNonFinite>
__device__ __forceinline__ uint32_t e4m3x2(float lo, float hi) {
  uint32_t bits = __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
  if constexpr (kMayBeNonFinite) {
    if (!is_finite(lo)) bits = (bits & 0xff00u) | kE4m3NaN;
    if (!is_finite(hi)) bits = (bits & 0x00ffu) | (kE4m3NaN << 8);
  }
  return bits;
}

// e4m3 x2 bytes back to two floats (exact: every e4m3 value is a half, every half a float).
__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t bits) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(bits), __NV_E4M3);
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}

// 8 values times 1 / scale (`inv_scale`, e4m3.py's `reciprocal`: one multiply per value, not a
// division) as 8 e4m3 bytes, the first value in the lowest byte, and, with `with_residual`, into
// `residual` the e4m3 bytes of what those miss (y * inv_scale - q, an exact difference, then
// rounded): Q as two e4m3 terms (q + residual) * scale, about 7 significant bits instead of 4.
template <bool kMayBeNonFinite>
__device__ __forceinline__ uint2 quantize8(const float (&y)[8], float inv_scale, bool with_residual, uint2& residual) {
  uint32_t pairs[4], rest[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float lo = mul_rn(y[2 * k], inv_scale), hi = mul_rn(y[2 * k + 1], inv_scale);
    pairs[k] = e4m3x2<kMayBeNonFinite>(lo, hi);
    if (with_residual) {
      const float2 back = e4m3x2_to_float2(pairs[k]);
      rest[k] = e4m3x2<kMayBeNonFinite>(sub_rn(lo, back.x), sub_rn(hi, back.y));
    }
  }
  if (with_residual) residual = make_uint2(rest[0] | (rest[1] << 16), rest[2] | (rest[3] << 16));
  return make_uint2(pairs[0] | (pairs[1] << 16), pairs[2] | (pairs[3] << 16));
}

// Where key r of a block goes in V^T: in each group of 16, key 8hi + 2t + lo moves to position
// 4t + 2hi + lo, the inverse of PERM = [0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15]
// (position p holds key PERM[p]). Why: the FP8 attention kernel's PV GEMM takes P from registers
// in the 8-bit WGMMA A layout, where a thread holds keys 4t..4t+3 of each 16-key half, while the
// fp32 accumulator of QK^T gives it keys 2t, 2t+1, 8+2t, 9+2t. With V's keys relabeled this way
// the accumulator registers already are the A operand, and no shuffles are needed.
__device__ __forceinline__ int v_position(int r) {
  const int k = r & 15;
  return (r & ~15) | ((k & 6) << 1) | ((k & 8) >> 2) | (k & 1);
}

template <bool kBf16, int kHeadDim>
__global__ void __launch_bounds__(kMaxThreads) quantize_fp8_kernel(const KernelArgs a) {
  using Tiling = RowTiling<kHeadDim>;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int nwarps = blockDim.x / 32;
  const int block = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const int row0 = block * a.block_size;
  const int rows = min(a.block_size, a.seqlen - row0);
  const int col = (lane % Tiling::kLanesPerRow) * 8;
  // The block row of this thread's i-th load.
  auto row_of = [&](int i) {
    return warp * kRowsPerWarp + i * Tiling::kRowsPerLoad + lane / Tiling::kLanesPerRow;
  };

  // Rows past the block load as zeros: they add nothing to the amax, and every lane still
  // takes part in the butterfly's shuffles.
  const uint16_t* x = a.x + batch * a.x_stride.batch + head * a.x_stride.head + col;
  uint4 raw[Tiling::kLoads];
#pragma unroll
  for (int i = 0; i < Tiling::kLoads; ++i) {
    const int r = row_of(i);
    raw[i] = r < rows ? load8(x + int64_t(row0 + r) * a.x_stride.row, a.vec16) : make_uint4(0, 0, 0, 0);
  }
  const bool rotate = a.signs != nullptr;
  float signs[8];
  if (rotate) {
#pragma unroll
    for (int j = 0; j < 8; ++j) signs[j] = __ldg(a.signs + col + j);
  }

  // Pass 1: amax on the bits of |y|. For non-negative floats the unsigned order is the float
  // order, subnormals included, and every NaN is above Inf: the max propagates NaN for free.
  constexpr bool kKeepRotated = kHeadDim == 64;  // within the 64 registers of a 1024-thread CTA
  float kept[kKeepRotated ? Tiling::kLoads : 1][8];
  uint32_t amax_bits = 0;
#pragma unroll
  for (int i = 0; i < Tiling::kLoads; ++i) {
    float y[8];
    widen<kBf16>(raw[i], y);
    if (rotate) hadamard<Tiling::kLanesPerRow>(y, signs, lane);
#pragma unroll
    for (int j = 0; j < 8; ++j) amax_bits = max(amax_bits, __float_as_uint(y[j]) & kAbsMask);
    if constexpr (kKeepRotated) {
#pragma unroll
      for (int j = 0; j < 8; ++j) kept[i][j] = y[j];
    }
  }
  __shared__ uint32_t warp_amax[kMaxThreads / 32];
  amax_bits = __reduce_max_sync(0xffffffffu, amax_bits);
  if (lane == 0) warp_amax[warp] = amax_bits;
  __syncthreads();
  for (int w = 0; w < nwarps; ++w) amax_bits = max(amax_bits, warp_amax[w]);

  // A scale below FLT_MIN flushes the block to zeros at scale FLT_MIN (e4m3.py); a NaN scale
  // (bits above Inf's) is not flushed, so a poisoned block stays poisoned.
  const float scale = div_rn(__uint_as_float(amax_bits), kE4m3Max);
  const bool flushed = __float_as_uint(scale) < kFltMinBits;
  const bool finite_block = is_finite(scale);
  // 1 / scale, correctly rounded (as the reference's tensor division; the floor scale FLT_MIN of a
  // flushed block never reaches quantize8).
  const float inv_scale = div_rn(1.f, scale);
  if (threadIdx.x == 0) {
    a.scale[(int64_t(batch) * a.heads + head) * gridDim.x + block] = flushed ? FLT_MIN : scale;
  }

  // Pass 2. V^T goes through shared memory, [head dim][stage_pitch] bytes, so that each row of
  // the transposed output is written with coalesced stores. The block's padded extent (its
  // rows rounded up to 16) is written in full: padding keys as zeros.
  extern __shared__ __align__(16) uint8_t stage[];
  const int extent = (rows + 15) / 16 * 16;
#pragma unroll
  for (int i = 0; i < Tiling::kLoads; ++i) {
    const int r = row_of(i);
    float y[8];
    if constexpr (kKeepRotated) {
#pragma unroll
      for (int j = 0; j < 8; ++j) y[j] = kept[i][j];
    } else {
      widen<kBf16>(raw[i], y);
      if (rotate) hadamard<Tiling::kLanesPerRow>(y, signs, lane);
    }
    // Padding rows are zeros even in a NaN block (0 / NaN would be NaN).
    // The NaN fix-up only in a block whose scale is not finite (a block-uniform branch).
    // A flushed block's residual is zero too (its data is exactly zero at the floor scale).
    // (A reference, not a pointer that may be null: the latter put `rest` on the stack.)
    uint2 rest = make_uint2(0, 0);
    const bool want_rest = a.residual != nullptr;
    const uint2 q = flushed || r >= rows ? make_uint2(0, 0)
                    : finite_block         ? quantize8<false>(y, inv_scale, want_rest, rest)
                                           : quantize8<true>(y, inv_scale, want_rest, rest);
    if (a.v_layout) {
      if (r < extent) {
        uint8_t* dst = stage + col * a.stage_pitch + v_position(r);
#pragma unroll
        for (int j = 0; j < 8; ++j) dst[j * a.stage_pitch] = ((j < 4 ? q.x : q.y) >> (8 * (j % 4))) & 0xffu;
      }
    } else if (r < rows) {
      const int64_t offset = ((int64_t(batch) * a.seqlen + row0 + r) * a.heads + head) * kHeadDim + col;
      *reinterpret_cast<uint2*>(a.out + offset) = q;
      if (a.residual != nullptr) *reinterpret_cast<uint2*>(a.residual + offset) = rest;
    }
  }
  if (a.v_layout) {
    __syncthreads();
    // A warp per head-dim row, a lane per 4 keys. row0 and seqlen_pad are multiples of 16
    // (block_size % 16 == 0), so the 4-byte stores are aligned.
    uint8_t* out = a.out + (int64_t(batch) * a.heads + head) * kHeadDim * a.seqlen_pad + row0;
    for (int c = warp; c < kHeadDim; c += nwarps) {
      const uint32_t* src = reinterpret_cast<const uint32_t*>(stage + c * a.stage_pitch);
      uint32_t* dst = reinterpret_cast<uint32_t*>(out + int64_t(c) * a.seqlen_pad);
      for (int w = lane; w < extent / 4; w += 32) dst[w] = src[w];
    }
  }
}

template <bool kBf16, int kHeadDim>
void launch(const KernelArgs& a, int nblocks, int batch, cudaStream_t stream) {
  const int threads = (a.block_size + kRowsPerWarp - 1) / kRowsPerWarp * 32;
  // V^T stage: the lanes of a row store to head-dim rows 8 apart, 2 * stage_pitch / 4 banks apart;
  // with stage_pitch / 4 odd (block_size % 16 == 0, + 4) 16 lanes hit 16 different banks.
  const int smem = a.v_layout ? kHeadDim * a.stage_pitch : 0;
  auto kernel = quantize_fp8_kernel<kBf16, kHeadDim>;
  if (smem > 48 * 1024) {
    FA3_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  }
  kernel<<<dim3(nblocks, a.heads, batch), threads, smem, stream>>>(a);
  FA3_CHECK_LAUNCH();
}

template <bool kBf16>
void launch_for_head_dim(const KernelArgs& a, int headdim, int nblocks, int batch, cudaStream_t stream) {
  switch (headdim) {
    case 64: return launch<kBf16, 64>(a, nblocks, batch, stream);
    case 128: return launch<kBf16, 128>(a, nblocks, batch, stream);
    default: return launch<kBf16, 256>(a, nblocks, batch, stream);
  }
}

}  // namespace

void run_quantize_fp8(const QuantizeFp8Params& p, void* stream) {
  FA3_CHECK_ARG(p.dtype == Dtype::kFloat16 || p.dtype == Dtype::kBFloat16,
                "dtype must be 0 (fp16) or 1 (bf16), got " << static_cast<int>(p.dtype));
  FA3_CHECK_ARG(p.headdim == 64 || p.headdim == 128 || p.headdim == 256,
                "headdim must be 64, 128 or 256, got " << p.headdim);
  FA3_CHECK_ARG(p.batch >= 0, "batch must be >= 0, got " << p.batch);
  FA3_CHECK_ARG(p.seqlen >= 0, "seqlen must be >= 0, got " << p.seqlen);
  FA3_CHECK_ARG(p.heads >= 0, "heads must be >= 0, got " << p.heads);
  FA3_CHECK_ARG(p.block_size >= 1 && p.block_size <= kQuantizeMaxBlock,
                "block_size must be in [1, " << kQuantizeMaxBlock << "], got " << p.block_size);
  FA3_CHECK_ARG(!p.v_layout || p.block_size % 16 == 0,
                "block_size must be a multiple of 16 with v_layout (V^T relabels keys in groups of 16), got "
                    << p.block_size);
  // Grid (blocks, heads, batch): y and z are limited to 65535.
  FA3_CHECK_ARG(p.heads <= 65535, "heads must be <= 65535, got " << p.heads);
  FA3_CHECK_ARG(p.batch <= 65535, "batch must be <= 65535, got " << p.batch);
  const int64_t seqlen_pad = (int64_t(p.seqlen) + 15) / 16 * 16;
  FA3_CHECK_ARG(seqlen_pad <= INT32_MAX, "seqlen must be <= " << INT32_MAX - 15 << ", got " << p.seqlen);
  if (p.batch == 0 || p.seqlen == 0 || p.heads == 0) return;

  FA3_CHECK_ARG(p.x != nullptr, "x must not be a null pointer");
  FA3_CHECK_ARG(p.out != nullptr, "out must not be a null pointer");
  FA3_CHECK_ARG(p.scale != nullptr, "scale must not be a null pointer");
  const auto address = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr); };
  FA3_CHECK_ARG(address(p.x) % 2 == 0, "x must be 2-byte aligned, got " << p.x);
  FA3_CHECK_ARG(address(p.out) % 16 == 0, "out must be 16-byte aligned, got " << p.out);
  FA3_CHECK_ARG(address(p.scale) % 4 == 0, "scale must be 4-byte aligned, got " << p.scale);
  FA3_CHECK_ARG(p.residual == nullptr || !p.v_layout, "residual is for Q and K (v_layout must be false)");
  FA3_CHECK_ARG(address(p.residual) % 16 == 0, "residual must be 16-byte aligned, got " << p.residual);

  KernelArgs a{};
  a.x = static_cast<const uint16_t*>(p.x);
  a.x_stride = p.x_stride;
  a.out = static_cast<uint8_t*>(p.out);
  a.residual = static_cast<uint8_t*>(p.residual);
  a.scale = p.scale;
  a.signs = p.signs;
  a.seqlen = p.seqlen;
  a.heads = p.heads;
  a.block_size = p.block_size;
  a.seqlen_pad = static_cast<int>(seqlen_pad);
  a.stage_pitch = p.block_size + 4;
  a.vec16 = address(p.x) % 16 == 0 && p.x_stride.batch % 8 == 0 && p.x_stride.row % 8 == 0 &&
            p.x_stride.head % 8 == 0;
  a.v_layout = p.v_layout;
  const int nblocks = (p.seqlen + p.block_size - 1) / p.block_size;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.dtype == Dtype::kBFloat16) {
    launch_for_head_dim<true>(a, p.headdim, nblocks, p.batch, s);
  } else {
    launch_for_head_dim<false>(a, p.headdim, nblocks, p.batch, s);
  }
}

}  // namespace fa3
