// What the extension can tell about the CUDA devices and about its own build, without torch.
#pragma once

#include <cstddef>
#include <string>

namespace fa3 {

struct DeviceInfo {
  int index;
  std::string name;
  int major;  // compute capability
  int minor;
  int sm_count;
  int max_smem_per_block_optin;  // bytes a block may use after raising its dynamic limit
  std::size_t l2_bytes;
  std::size_t total_mem_bytes;
};

struct DeviceCount {
  int count;           // 0 when there is no usable device
  std::string reason;  // why count is 0 (no driver, no device), empty otherwise
};

struct BuildInfo {
  int cuda_runtime_version;  // CUDART_VERSION the extension was compiled against
  int cutlass_major, cutlass_minor, cutlass_patch;
  std::string arch;       // the device code embedded in the extension
  std::string cutlass_dir;
};

// Never throws: a machine without driver or GPU reports count 0 and the reason.
DeviceCount cuda_device_count();
// Throws std::invalid_argument for an index out of range, CudaError on driver errors.
DeviceInfo cuda_device_info(int index);
// Driver version as cudaDriverGetVersion reports it (0 when no driver is installed).
int cuda_driver_version();
BuildInfo build_info();
// Multiprocessor count of the current CUDA device, cached per device (persistent grids).
int current_device_sm_count();

}  // namespace fa3
