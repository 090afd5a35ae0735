// Microbenchmark: does F2FP (fp32 -> e4m3x2 / f16x2 packs) share MUFU.EX2's pipe on sm_90? Cycles per warp instruction
// per SM for MUFU.EX2 alone, F2FP alone, and both interleaved (equal to MUFU alone: separate pipes).
//   nvcc -gencode arch=compute_90a,code=sm_90a -O3 -o /tmp/xu scripts/xu_pipe_probe.cu && /tmp/xu
#include <cstdio>
#include <cuda_runtime.h>
template <int kMufu, int kF2fp, int kF16>
__global__ void k(float* out, int iters) {
  float v[8];
  for (int i = 0; i < 8; ++i) v[i] = -0.001f * (threadIdx.x + i);
  unsigned acc = 0;
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (kMufu) asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+f"(v[i]));
      if (kF2fp && (i % 2 == 0)) {
        unsigned short h;
        asm volatile("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(h) : "f"(v[i]), "f"(v[i + 1]));
        acc ^= h;
      }
      if (kF16 && (i % 2 == 0)) {
        unsigned h;
        asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(h) : "f"(v[i]), "f"(v[i + 1]));
        acc ^= h;
      }
    }
  }
  float s = 0;
  for (int i = 0; i < 8; ++i) s += v[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s + acc;
}
template <int a, int b, int c>
void run(const char* name, float* out, int iters) {
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  int blocks = 132 * 4, threads = 256;  // 32 warps per SM
  k<a, b, c><<<blocks, threads>>>(out, iters);
  cudaEventRecord(e0);
  for (int r = 0; r < 5; ++r) k<a, b, c><<<blocks, threads>>>(out, iters);
  cudaEventRecord(e1); cudaEventSynchronize(e1);
  float ms; cudaEventElapsedTime(&ms, e0, e1); ms /= 5;
  int dev; cudaGetDevice(&dev); int clk; cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev);
  double warp_instr_per_sm = double(blocks) * threads / 32 * iters * 8 / 132;  // per 8-slot unit
  printf("%-28s %8.3f ms   cycles per 8-slot group per SM per warp-instr: %.2f (at %d MHz)\n", name, ms,
         ms * 1e-3 * clk * 1e3 / warp_instr_per_sm, clk / 1000);
}
int main() {
  float* out; cudaMalloc(&out, 132 * 4 * 256 * sizeof(float));
  int iters = 20000;
  run<1, 0, 0>("MUFU.EX2 only", out, iters);
  run<0, 1, 0>("F2FP e4m3x2 only (1/2)", out, iters);
  run<1, 1, 0>("MUFU + F2FP e4m3x2", out, iters);
  run<0, 0, 1>("F2FP f16x2 only (1/2)", out, iters);
  run<1, 0, 1>("MUFU + F2FP f16x2", out, iters);
  run<1, 0, 0>("MUFU.EX2 only (again)", out, iters);
  return 0;
}
