// pybind11 module fa3._C: the only Python-facing C++ file. It takes raw device pointers
// (ints), sizes, strides in elements, scalars and a stream handle; Python owns all memory.
// Plain C++ only: no CuTe, no torch (DESIGN.md, "Python <-> C++ boundary").
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "device_info.h"
#include "errors.h"
#include "smoke_kernel.h"

namespace py = pybind11;

namespace {

template <typename T>
T* as_ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

void* as_stream(std::uintptr_t handle) { return reinterpret_cast<void*>(handle); }

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fa3 CUDA extension (sm_90a). Use the Python package fa3, not this module.";

  py::register_exception<fa3::CudaError>(m, "CudaError", PyExc_RuntimeError);

  m.def("cuda_device_count", [] {
    fa3::DeviceCount dc = fa3::cuda_device_count();
    return py::make_tuple(dc.count, dc.reason);
  }, "(count, reason): number of CUDA devices, and why it is 0 when it is.");

  m.def("cuda_device_info", [](int index) {
    fa3::DeviceInfo d = fa3::cuda_device_info(index);
    py::dict out;
    out["index"] = d.index;
    out["name"] = d.name;
    out["capability"] = py::make_tuple(d.major, d.minor);
    out["sm_count"] = d.sm_count;
    out["max_smem_per_block_optin"] = d.max_smem_per_block_optin;
    out["l2_bytes"] = d.l2_bytes;
    out["total_mem_bytes"] = d.total_mem_bytes;
    return out;
  }, py::arg("index"), "Properties of CUDA device `index` as a dict.");

  m.def("cuda_driver_version", &fa3::cuda_driver_version,
        "CUDA driver version (e.g. 13000), 0 when no driver is installed.");

  m.def("build_info", [] {
    fa3::BuildInfo b = fa3::build_info();
    py::dict out;
    out["cuda_runtime_version"] = b.cuda_runtime_version;
    out["cutlass_version"] = py::make_tuple(b.cutlass_major, b.cutlass_minor, b.cutlass_patch);
    out["arch"] = b.arch;
    out["cutlass_dir"] = b.cutlass_dir;
    return out;
  }, "How the extension was built.");

  m.def("scale_2d", [](std::uintptr_t x, std::uintptr_t y, int64_t rows, int64_t cols, int64_t ldx,
                       int64_t ldy, float alpha, std::uintptr_t stream) {
    fa3::launch_scale_2d(as_ptr<const float>(x), as_ptr<float>(y), rows, cols, ldx, ldy, alpha,
                         as_stream(stream));
  }, py::arg("x"), py::arg("y"), py::arg("rows"), py::arg("cols"), py::arg("ldx"), py::arg("ldy"),
     py::arg("alpha"), py::arg("stream"),
     "Smoke-test CuTe kernel: y = alpha * x for fp32 row-major matrices (device pointers).");

  m.def("arch_probe", [](std::uintptr_t out, std::uintptr_t stream) {
    fa3::launch_arch_probe(as_ptr<int32_t>(out), as_stream(stream));
  }, py::arg("out"), py::arg("stream"),
     "Writes (__CUDA_ARCH__, sm_90a features compiled in) into 2 int32s at device pointer out.");
}
