// Device and build queries through the CUDA runtime (statically linked).
#include <cutlass/version.h>

#include <atomic>

#include "cuda_check.h"
#include "device_info.h"

namespace fa3 {

DeviceCount cuda_device_count() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return {0, std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err)};
  }
  if (count == 0) return {0, "no CUDA device is visible"};
  return {count, ""};
}

DeviceInfo cuda_device_info(int index) {
  DeviceCount dc = cuda_device_count();
  FA3_CHECK_ARG(index >= 0 && index < dc.count,
                "device index must be in [0, " << dc.count << "), got " << index
                                               << (dc.reason.empty() ? "" : " (" + dc.reason + ")"));
  cudaDeviceProp prop{};
  FA3_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.max_smem_per_block_optin = static_cast<int>(prop.sharedMemPerBlockOptin);
  info.l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
  info.total_mem_bytes = prop.totalGlobalMem;
  return info;
}

int cuda_driver_version() {
  int version = 0;
  if (cudaDriverGetVersion(&version) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return version;
}

int current_device_sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  int device = 0;
  FA3_CUDA_CHECK(cudaGetDevice(&device));
  FA3_CHECK_ARG(device >= 0 && device < kMaxDevices, "CUDA device index " << device << " is beyond " << kMaxDevices);
  int sms = cache[device].load(std::memory_order_relaxed);
  if (sms == 0) {
    FA3_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    cache[device].store(sms, std::memory_order_relaxed);
  }
  return sms;
}

BuildInfo build_info() {
  return {CUDART_VERSION, CUTLASS_MAJOR, CUTLASS_MINOR, CUTLASS_PATCH, "sm_90a", FA3_CUTLASS_DIR};
}

}  // namespace fa3
