// pybind11 module fa3._C: the only Python-facing C++ file. It takes raw device pointers
// (ints), sizes, strides in elements, scalars and a stream handle; Python owns all memory.
// Plain C++ only: no CuTe, no torch (DESIGN.md, "Python <-> C++ boundary").
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <tuple>

#include "bwd_workspace.h"
#include "device_info.h"
#include "errors.h"
#include "flash_bwd_params.h"
#include "flash_params.h"
#include "quantize_fp8.h"
#include "smoke_kernel.h"
#include "stream_k_plan.h"
#include "tile_size.h"

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

// The sizes and mask of a forward (FwdParams) or backward (BwdParams) call.
template <class Params>
Params sizes(int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim, bool causal) {
  Params p{};
  p.batch = batch;
  p.seqlen_q = seqlen_q;
  p.seqlen_k = seqlen_k;
  p.nheads = nheads;
  p.nheads_kv = nheads_kv;
  p.headdim = headdim;
  p.causal = causal;
  return p;
}

// The sizes and flags of a forward call, shared by fwd and fwd_workspace_bytes.
fa3::FwdParams sizes_and_flags(int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim,
                               bool causal, int dtype, int schedule, bool stream_k) {
  auto p = sizes<fa3::FwdParams>(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal);
  p.dtype = static_cast<fa3::Dtype>(dtype);
  p.out_dtype = p.dtype;  // fp16/bf16 kernels write O in their input type; fwd_fp8 overrides it
  p.schedule = static_cast<fa3::FwdSchedule>(schedule);
  p.stream_k = stream_k;
  return p;
}

void fwd(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::uintptr_t o, std::uintptr_t lse,
         StrideTuple q_stride, StrideTuple k_stride, StrideTuple v_stride, StrideTuple o_stride, int batch,
         int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim, float softmax_scale, bool causal,
         int dtype, int schedule, bool stream_k, std::uintptr_t workspace, int64_t workspace_bytes,
         std::uintptr_t stream) {
  fa3::FwdParams p = sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, dtype, schedule,
                                     stream_k);
  p.q = as_ptr<const void>(q);
  p.k = as_ptr<const void>(k);
  p.v = as_ptr<const void>(v);
  p.o = as_ptr<void>(o);
  p.lse = as_ptr<float>(lse);
  p.q_stride = as_strides(q_stride);
  p.k_stride = as_strides(k_stride);
  p.v_stride = as_strides(v_stride);
  p.o_stride = as_strides(o_stride);
  p.softmax_scale = softmax_scale;
  p.softmax_scale_log2 = softmax_scale * 1.4426950408889634f;  // log2(e)
  p.workspace = as_ptr<void>(workspace);
  p.workspace_bytes = workspace_bytes;
  fa3::run_fwd(p, as_stream(stream));
}

using DescaleStrideTuple = std::tuple<int64_t, int64_t, int64_t>;

fa3::DescaleStrides as_descale_strides(const DescaleStrideTuple& s) {
  return {std::get<0>(s), std::get<1>(s), std::get<2>(s)};
}

// FP8 forward: e4m3 q, k and V^T (kernel layout), fp32 descales per block with strides
// (batch, head, block), O in out_dtype. No stream-K, so no workspace.
void fwd_fp8(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v_t, std::uintptr_t o, std::uintptr_t lse,
             StrideTuple q_stride, StrideTuple k_stride, StrideTuple v_t_stride, StrideTuple o_stride,
             std::uintptr_t q_descale, DescaleStrideTuple q_descale_stride, std::uintptr_t k_descale,
             DescaleStrideTuple k_descale_stride, std::uintptr_t v_descale, DescaleStrideTuple v_descale_stride,
             std::uintptr_t q_residual, int batch, int seqlen_q, int seqlen_k, int seqlen_k_padded, int nheads,
             int nheads_kv, int headdim, float softmax_scale, bool causal, int out_dtype, std::uintptr_t stream) {
  fa3::FwdParams p = sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal,
                                     static_cast<int>(fa3::Dtype::kFloat8E4M3), 0, false);
  p.out_dtype = static_cast<fa3::Dtype>(out_dtype);
  p.q = as_ptr<const void>(q);
  p.k = as_ptr<const void>(k);
  p.v = as_ptr<const void>(v_t);
  p.o = as_ptr<void>(o);
  p.lse = as_ptr<float>(lse);
  p.q_stride = as_strides(q_stride);
  p.k_stride = as_strides(k_stride);
  p.v_stride = as_strides(v_t_stride);
  p.o_stride = as_strides(o_stride);
  p.q_descale = as_ptr<const float>(q_descale);
  p.k_descale = as_ptr<const float>(k_descale);
  p.v_descale = as_ptr<const float>(v_descale);
  p.q_descale_stride = as_descale_strides(q_descale_stride);
  p.k_descale_stride = as_descale_strides(k_descale_stride);
  p.v_descale_stride = as_descale_strides(v_descale_stride);
  p.q_residual = as_ptr<const void>(q_residual);
  p.seqlen_k_padded = seqlen_k_padded;
  p.softmax_scale = softmax_scale;
  p.softmax_scale_log2 = softmax_scale * 1.4426950408889634f;  // log2(e)
  fa3::run_fwd(p, as_stream(stream));
}

// The sizes and flags of a backward call, shared by bwd, bwd_workspace_bytes and bwd_schedule.
fa3::BwdParams bwd_sizes_and_flags(int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim,
                                   bool causal, bool deterministic) {
  auto p = sizes<fa3::BwdParams>(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal);
  p.deterministic = deterministic;
  return p;
}

// Backward (fp16/bf16): q, k, v, o, dout and dq, dk, dv with (batch, row, head) strides; lse
// (batch, nheads, seqlen_q) fp32 from the forward; bwd_workspace_bytes(...) of device memory.
void bwd(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::uintptr_t o, std::uintptr_t dout,
         std::uintptr_t lse, std::uintptr_t dq, std::uintptr_t dk, std::uintptr_t dv, StrideTuple q_stride,
         StrideTuple k_stride, StrideTuple v_stride, StrideTuple o_stride, StrideTuple dout_stride,
         StrideTuple dq_stride, StrideTuple dk_stride, StrideTuple dv_stride, int batch, int seqlen_q, int seqlen_k,
         int nheads, int nheads_kv, int headdim, float softmax_scale, bool causal, int dtype, bool deterministic,
         std::uintptr_t workspace, int64_t workspace_bytes, std::uintptr_t stream) {
  fa3::BwdParams p = bwd_sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, deterministic);
  p.q = as_ptr<const void>(q);
  p.k = as_ptr<const void>(k);
  p.v = as_ptr<const void>(v);
  p.o = as_ptr<const void>(o);
  p.dout = as_ptr<const void>(dout);
  p.lse = as_ptr<const float>(lse);
  p.dq = as_ptr<void>(dq);
  p.dk = as_ptr<void>(dk);
  p.dv = as_ptr<void>(dv);
  p.q_stride = as_strides(q_stride);
  p.k_stride = as_strides(k_stride);
  p.v_stride = as_strides(v_stride);
  p.o_stride = as_strides(o_stride);
  p.dout_stride = as_strides(dout_stride);
  p.dq_stride = as_strides(dq_stride);
  p.dk_stride = as_strides(dk_stride);
  p.dv_stride = as_strides(dv_stride);
  p.softmax_scale = softmax_scale;
  p.dtype = static_cast<fa3::Dtype>(dtype);
  p.workspace = as_ptr<void>(workspace);
  p.workspace_bytes = workspace_bytes;
  fa3::run_bwd(p, as_stream(stream));
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
        py::arg("softmax_scale"), py::arg("causal"), py::arg("dtype"), py::arg("schedule"), py::arg("stream_k"),
        py::arg("workspace"), py::arg("workspace_bytes"), py::arg("stream"),
        "Attention forward (device pointers; strides (batch, row, head) in elements; dtype 0 fp16, 1 bf16;\n"
        "schedule 0 = default, 1-4 = ablation variants, see hopper/flash_params.h; stream_k: balance the\n"
        "last wave, with fwd_workspace_bytes(...) bytes of device memory at workspace).");

  m.def("fwd_fp8", &fwd_fp8, py::arg("q"), py::arg("k"), py::arg("v_t"), py::arg("o"), py::arg("lse"),
        py::arg("q_stride"), py::arg("k_stride"), py::arg("v_t_stride"), py::arg("o_stride"), py::arg("q_descale"),
        py::arg("q_descale_stride"), py::arg("k_descale"), py::arg("k_descale_stride"), py::arg("v_descale"),
        py::arg("v_descale_stride"), py::arg("q_residual"), py::arg("batch"), py::arg("seqlen_q"), py::arg("seqlen_k"),
        py::arg("seqlen_k_padded"), py::arg("nheads"), py::arg("nheads_kv"), py::arg("headdim"),
        py::arg("softmax_scale"), py::arg("causal"), py::arg("out_dtype"), py::arg("stream"),
        "FP8 attention forward (device pointers): e4m3 q, k (batch, seqlen, heads, headdim) and V^T\n"
        "(batch, nheads_kv, headdim, seqlen_k_padded; v_t_stride = (batch, headdim, head)) with keys relabeled\n"
        "in groups of 16; fp32 descales with (batch, head, block) strides; out_dtype 0 fp16, 1 bf16. q_residual:\n"
        "0, or Q's second e4m3 term laid out as q (head dim 64; see hopper/flash_params.h).");

  m.def("bwd", &bwd, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("o"), py::arg("dout"), py::arg("lse"),
        py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("q_stride"), py::arg("k_stride"), py::arg("v_stride"),
        py::arg("o_stride"), py::arg("dout_stride"), py::arg("dq_stride"), py::arg("dk_stride"),
        py::arg("dv_stride"), py::arg("batch"), py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("nheads"),
        py::arg("nheads_kv"), py::arg("headdim"), py::arg("softmax_scale"), py::arg("causal"), py::arg("dtype"),
        py::arg("deterministic"), py::arg("workspace"), py::arg("workspace_bytes"), py::arg("stream"),
        "Attention backward (device pointers; strides (batch, row, head) in elements; dtype 0 fp16, 1 bf16;\n"
        "head dims 64, 128): dq, dk, dv from q, k, v, o, dout and the forward's lse, with\n"
        "bwd_workspace_bytes(...) bytes of device memory at workspace (256-byte aligned).");

  m.def("bwd_workspace_bytes", [](int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim,
                                  bool causal, bool deterministic, int num_sms) {
    return fa3::bwd_workspace_bytes(
        bwd_sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, deterministic), num_sms);
  }, py::arg("batch"), py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("nheads"), py::arg("nheads_kv"),
     py::arg("headdim"), py::arg("causal"), py::arg("deterministic"), py::arg("num_sms"),
     "Bytes of device workspace bwd needs on a device of num_sms SMs (dQ's fp32 accumulator, per-row\n"
     "vectors, and the dK and dV sums of the key tiles cut in the last wave: hopper/bwd_schedule.h).");

  m.def("bwd_schedule", [](int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim,
                           bool causal, bool deterministic, int num_sms) {
    fa3::BwdParams p = bwd_sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal,
                                           deterministic);
    fa3::BwdWorkspaceLayout w = fa3::bwd_workspace_layout(p, num_sms);
    fa3::BwdSplitPlan const& plan = w.plan;
    fa3::BwdTileList tiles = fa3::bwd_tile_list(p);
    py::list ctas;
    for (int cta = 0; cta < plan.num_ctas(); ++cta) {
      fa3::BwdUnit unit = plan.unit(cta);
      fa3::BwdTileList::Tile t = tiles.decode(unit.tile);
      py::list steps;
      fa3::BwdSteps::of(unit, 0, w.m_blocks, nheads / nheads_kv).for_each_head([&](int g, int m_first, int m_last) {
        for (int m = m_first; m < m_last; ++m) steps.append(py::make_tuple(g, m));
      });
      ctas.append(py::make_tuple(t.n_block, t.bidh_kv, t.bidb, unit.split, steps));
    }
    return py::make_tuple(plan.pieces, ctas);
  }, py::arg("batch"), py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("nheads"), py::arg("nheads_kv"),
     py::arg("headdim"), py::arg("causal"), py::arg("deterministic"), py::arg("num_sms"),
     "The backward kernel's work (hopper/bwd_schedule.h), for tests: (pieces per cut key tile, per CTA of the\n"
     "grid (key tile, key/value head, batch, index of the cut tile or -1, steps)), each step (query head in the\n"
     "group, query tile), listed as if every query tile saw every key tile (causal only changes the plan).");

  m.def("fwd_tile_size", [](int headdim, bool fp8) {
    FA3_CHECK_ARG(headdim == 64 || headdim == 128 || headdim == 256, "headdim must be 64, 128 or 256, got " << headdim);
    fa3::FwdTileSize t = fa3::fwd_tile_size(headdim, fp8);
    return py::make_tuple(t.block_m, t.block_n, t.stages);
  }, py::arg("headdim"), py::arg("fp8"),
     "(block_m, block_n, stages) of the forward kernel for headdim (hopper/tile_size.h); for FP8 also the\n"
     "quantization blocks of Q (block_m rows) and of K, V (block_n keys).");

  m.def("fwd_workspace_bytes", [](int batch, int seqlen_q, int seqlen_k, int nheads, int nheads_kv, int headdim,
                                  bool causal, int dtype, int schedule, bool stream_k) {
    return fa3::fwd_workspace_bytes(
        sizes_and_flags(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, dtype, schedule, stream_k));
  }, py::arg("batch"), py::arg("seqlen_q"), py::arg("seqlen_k"), py::arg("nheads"), py::arg("nheads_kv"),
     py::arg("headdim"), py::arg("causal"), py::arg("dtype"), py::arg("schedule"), py::arg("stream_k"),
     "Bytes of device workspace fwd needs for these sizes and flags on the current device (0: none).");

  m.def("quantize_fp8", [](std::uintptr_t x, StrideTuple x_stride, std::uintptr_t out, std::uintptr_t residual,
                           std::uintptr_t scale,
                           std::uintptr_t signs, int batch, int seqlen, int heads, int headdim, int block_size,
                           int dtype, bool v_layout, std::uintptr_t stream) {
    fa3::QuantizeFp8Params p{};
    p.x = as_ptr<const void>(x);
    p.x_stride = as_strides(x_stride);
    p.out = as_ptr<void>(out);
    p.residual = as_ptr<void>(residual);
    p.scale = as_ptr<float>(scale);
    p.signs = as_ptr<const float>(signs);
    p.batch = batch;
    p.seqlen = seqlen;
    p.heads = heads;
    p.headdim = headdim;
    p.block_size = block_size;
    p.dtype = static_cast<fa3::Dtype>(dtype);
    p.v_layout = v_layout;
    fa3::run_quantize_fp8(p, as_stream(stream));
  }, py::arg("x"), py::arg("x_stride"), py::arg("out"), py::arg("residual"), py::arg("scale"), py::arg("signs"),
     py::arg("batch"),
     py::arg("seqlen"), py::arg("heads"), py::arg("headdim"), py::arg("block_size"), py::arg("dtype"),
     py::arg("v_layout"), py::arg("stream"),
     "FP8 block quantization (hopper/quantize_fp8.h): x (batch, seqlen, heads, headdim) fp16/bf16 with strides\n"
     "x_stride (batch, row, head) in elements -> e4m3 out and fp32 scale (batch, heads, ceil(seqlen / block_size)),\n"
     "contiguous, one scale per block_size rows (1..256). signs: headdim fp32 values s / sqrt(headdim) of the\n"
     "Hadamard rotation, or 0 for none. out is (batch, seqlen, heads, headdim), or with v_layout V^T\n"
     "(batch, heads, headdim, ceil(seqlen / 16) * 16) with the keys relabeled in groups of 16 (block_size % 16 == 0).\n"
     "residual: 0, or a second e4m3 output laid out as out (not with v_layout), e4m3(x / scale - out).\n"
     "dtype 0 fp16, 1 bf16. Equals fa3.quant.quantize_e4m3(hadamard_rotate(x)) bit for bit.");

  m.def("stream_k_schedule", [](int num_tiles, int num_ctas, int steps_per_tile) {
    FA3_CHECK_ARG(num_ctas >= 1 && num_ctas <= num_tiles && steps_per_tile >= 1,
                  "need 1 <= num_ctas <= num_tiles and steps_per_tile >= 1");
    fa3::StreamKPlan plan = fa3::StreamKPlan::make(num_tiles, num_ctas, steps_per_tile, true);
    py::list ctas;
    for (int cta = 0; cta < num_ctas; ++cta) {
      py::list units;
      for (fa3::Work w = plan.first(cta); w.tile < num_tiles; w = plan.next(cta, w)) {
        int end = w.step_end < steps_per_tile ? w.step_end : steps_per_tile;
        units.append(py::make_tuple(w.tile, w.step_begin, end, w.split_slot));
      }
      ctas.append(units);
    }
    return ctas;
  }, py::arg("num_tiles"), py::arg("num_ctas"), py::arg("steps_per_tile"),
     "The persistent forward kernel's work per CTA (hopper/stream_k_plan.h), for tests: per CTA, its units\n"
     "(tile, first key-tile step, end step, split slot or -1) in order.");

  m.def("arch_probe", [](std::uintptr_t out, std::uintptr_t stream) {
    fa3::launch_arch_probe(as_ptr<int32_t>(out), as_stream(stream));
  }, py::arg("out"), py::arg("stream"),
     "Writes (__CUDA_ARCH__, sm_90a features compiled in) into 2 int32s at device pointer out.");
}
