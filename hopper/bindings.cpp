// pybind11 module fa3._C: the only Python-facing C++ file. It takes raw device pointers
// (ints), sizes, strides in elements, scalars and a stream handle; Python owns all memory.
// Plain C++ only: no CuTe, no torch (DESIGN.md, "Python <-> C++ boundary").
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <tuple>

#include "device_info.h"
#include "errors.h"
#include "flash_params.h"
#include "smoke_kernel.h"

namespace py = pybind11;

namespace {

template <typename T>
T* as_ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

void* as_stream(std::uintptr_t handle) { return reinterpret_cast<void*>(handle); }

fa3::Strides3 as_strides(const std::tuple<int64_t, int64_t, int64_t>& s) {
  return {std::get<0>(s), std::get<1>(s), std::get<2>(s)};
}

using StrideTuple = std::tuple<int64_t, int64_t, int64_t>;

void fwd(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::uintptr_t o, std::uintptr_t lse,
         StrideTuple q_stride, StrideTuple k_stride, StrideTuple v_stride, StrideTuple o_stride, int batch,
         int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim, float softmax_scale, bool causal,
         int dtype, int schedule, std::uintptr_t stream) {
  fa3::FwdParams p{};
  p.q = as_ptr<const void>(q);
  p.k = as_ptr<const void>(k);
  p.v = as_ptr<const void>(v);
  p.o = as_ptr<void>(o);
  p.lse = as_ptr<float>(lse);
  p.q_stride = as_strides(q_stride);
  p.k_stride = as_strides(k_stride);
  p.v_stride = as_strides(v_stride);
  p.o_stride = as_strides(o_stride);
  p.batch = batch;
  p.seqlen_q = seqlen_q;
  p.seqlen_k = seqlen_k;
  p.nheads = nheads;
  p.nheads_kv = nheads_kv;
  p.headdim = headdim;
  p.softmax_scale = softmax_scale;
  p.softmax_scale_log2 = softmax_scale * 1.4426950408889634f;  // log2(e)
  p.causal = causal;
  p.dtype = static_cast<fa3::Dtype>(dtype);
  p.schedule = static_cast<fa3::FwdSchedule>(schedule);
  fa3::run_fwd(p, as_stream(stream));
}

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

  m.def("fwd", &fwd, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("o"), py::arg("lse"),
        py::arg("q_stride"), py::arg("k_stride"), py::arg("v_stride"), py::arg("o_stride"), py::arg("batch"),
        py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("nheads"), py::arg("nheads_kv"), py::arg("headdim"),
        py::arg("softmax_scale"), py::arg("causal"), py::arg("dtype"), py::arg("schedule"), py::arg("stream"),
        "Attention forward (device pointers; strides (batch, row, head) in elements; dtype 0 fp16, 1 bf16;\n"
        "schedule 0 = default, 1-3 = ablation variants, see hopper/flash_params.h).");

  m.def("arch_probe", [](std::uintptr_t out, std::uintptr_t stream) {
    fa3::launch_arch_probe(as_ptr<int32_t>(out), as_stream(stream));
  }, py::arg("out"), py::arg("stream"),
     "Writes (__CUDA_ARCH__, sm_90a features compiled in) into 2 int32s at device pointer out.");
}
