"""cuDNN's own FP8 attention, through NVIDIA's ``nvidia-cudnn-frontend`` package when it is
installed (``pip install fa3[cudnn]``): the FP8 peer of ``python -m fa3.bench --fp8`` and a row
of the accuracy report. It is the FP8 attention Transformer Engine users get on Hopper.

cuDNN's FP8 forward is per-tensor scaled: e4m3 Q, K, V with one descale each; P multiplied by
``scale_s`` before its e4m3 cast (here 448, P's bound being 1, where Transformer Engine's
delayed scaling of P settles); O written in e4m3 (on Hopper) with ``scale_o``, set here from a
first run's amax of O (delayed scaling with one step of history). ``output()`` returns O in
16 bits.

    attn = CudnnFp8Attention(q, k, v, causal=True)   # quantize, build the cuDNN graph, calibrate O
    attn()                                           # one forward (what the benchmark times)
    out = attn.output()                              # O dequantized, (batch, seqlen_q, nheads, headdim)
"""
from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import torch

from ._validation import check_bool, check_qkv, check_softmax_scale
from .quant.e4m3 import E4M3_MAX, quantize_e4m3

INPUT_DTYPES = (torch.float16, torch.bfloat16)
# The oldest frontend this graph is known to build with (1.16 fails: "Tensor
# 'fp8_attention::Amax_S' dims not set", as amax_s stays virtual here; 1.32 works).
MIN_FRONTEND = (1, 32)


def check_frontend_version(version: str) -> None:
    """Raise RuntimeError, naming both versions, if nvidia-cudnn-frontend `version` is older than
    MIN_FRONTEND."""
    found = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if found < MIN_FRONTEND:
        need = ".".join(map(str, MIN_FRONTEND))
        raise RuntimeError(f"cuDNN's FP8 attention here needs nvidia-cudnn-frontend >= {need}, found {version}: "
                           f"pip install -U 'nvidia-cudnn-frontend>={need}'")


def cudnn_fp8_available() -> bool:
    """Whether cuDNN's FP8 attention can run here: the frontend package and a CUDA GPU."""
    try:
        import cudnn  # noqa: F401  (nvidia-cudnn-frontend)
    except ImportError:
        return False
    return torch.cuda.is_available()


@functools.lru_cache(maxsize=None)
def _handle(device_index: int):
    import cudnn
    with torch.cuda.device(device_index):
        return cudnn.create_handle()


def _bhsd(x: torch.Tensor) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """cuDNN's (batch, heads, seq, dim) view of a flash_attn-layout (batch, seq, heads, dim) tensor."""
    b, s, h, d = x.shape
    sb, ss, sh, sd = x.stride()
    return (b, h, s, d), (sb, sh, ss, sd)


@functools.lru_cache(maxsize=64)
def _graph(q_dims, q_strides, k_dims, k_strides, o_dims, o_strides, causal: bool, softmax_scale: float,
           device_index: int):
    """The cuDNN graph of one configuration (built once; tensors are bound at execution)."""
    import cudnn
    e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
    handle = _handle(device_index)
    graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32, handle=handle)
    q = graph.tensor(name="q", dim=q_dims, stride=q_strides, data_type=e4m3)
    k = graph.tensor(name="k", dim=k_dims, stride=k_strides, data_type=e4m3)
    v = graph.tensor(name="v", dim=k_dims, stride=k_strides, data_type=e4m3)
    names = ("descale_q", "descale_k", "descale_v", "descale_s", "scale_s", "scale_o")
    scalars = {n: graph.tensor(name=n, dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=fp32) for n in names}
    # Causal as fa3's: bottom-right aligned (key j visible to query i iff j <= i + seqlen_k - seqlen_q).
    # With seqlen_q == seqlen_k that is the top-left mask, the only causal FP8 graph cuDNN's Hopper
    # engines accept (a bottom-right band is declined there: "only supported on Blackwell").
    if not causal:
        mask = {}
    elif q_dims[2] == k_dims[2]:
        mask = dict(use_causal_mask=True)
    else:
        mask = dict(use_causal_mask_bottom_right=True)
    # amax_s stays virtual (an output would restrict cuDNN to its older engines): scale_s is set
    # from P's bound instead, as cuDNN's documentation advises.
    o, _, _, amax_o = graph.sdpa_fp8(q=q, k=k, v=v, **scalars, generate_stats=False, attn_scale=softmax_scale,
                                     name="fp8_attention", **mask)
    o.set_output(True).set_dim(o_dims).set_stride(o_strides).set_data_type(e4m3)
    amax_o.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(fp32)
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans()
    return graph, {"q": q, "k": k, "v": v, "o": o, "amax_o": amax_o, **scalars}


class CudnnFp8Attention:
    """cuDNN's FP8 attention for one set of fp16/bf16 inputs (module docstring).

    Args:
        q: (batch, seqlen_q, nheads, headdim), fp16 or bf16, CUDA.
        k, v: (batch, seqlen_k, nheads_kv, headdim), same dtype; nheads % nheads_kv == 0.
        causal: bottom-right aligned causal mask, as fa3's (cuDNN's Hopper engines take a causal FP8
            graph only with seqlen_q == seqlen_k; otherwise building the graph raises cuDNN's error).
        softmax_scale: >= 0; default headdim ** -0.5.
    """

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                 softmax_scale: Optional[float] = None) -> None:
        if not cudnn_fp8_available():
            raise RuntimeError("cuDNN's FP8 attention needs nvidia-cudnn-frontend and a CUDA GPU: "
                               "pip install nvidia-cudnn-frontend (or fa3[cudnn])")
        import cudnn
        check_frontend_version(cudnn.__version__)
        shape = check_qkv(q, k, v, INPUT_DTYPES)
        check_bool(causal, "causal")
        scale = check_softmax_scale(softmax_scale, shape.headdim)
        if q.device.type != "cuda":
            raise ValueError(f"q, k, v must be CUDA tensors, got device {q.device}")
        self.out_dtype = q.dtype
        # Per-tensor e4m3 (amax / 448 scales): the same quantization as the standard FP8 baseline.
        q8, k8, v8 = (quantize_e4m3(x) for x in (q, k, v))
        self.o = torch.empty(q.shape, dtype=torch.float8_e4m3fn, device=q.device)
        q_dims, q_strides = _bhsd(q8.data)
        k_dims, k_strides = _bhsd(k8.data)
        v_dims, v_strides = _bhsd(v8.data)
        if v_strides != k_strides:  # quantize_e4m3 writes contiguous tensors: k and v alike
            raise ValueError(f"k and v must have the same strides, got {k_strides} and {v_strides}")
        o_dims, o_strides = _bhsd(self.o)
        self._graph, self._tensors = _graph(q_dims, q_strides, k_dims, k_strides, o_dims, o_strides, causal,
                                            float(scale), q.device.index or 0)
        dev = q.device

        def scalar(x) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=dev).reshape(1, 1, 1, 1).clone()

        self._scale_o = scalar(1.0)
        self._amax_o = scalar(0.0)
        self._pack: Dict[object, torch.Tensor] = {
            self._tensors["q"]: q8.data, self._tensors["k"]: k8.data, self._tensors["v"]: v8.data,
            self._tensors["o"]: self.o,
            self._tensors["descale_q"]: scalar(q8.scale), self._tensors["descale_k"]: scalar(k8.scale),
            self._tensors["descale_v"]: scalar(v8.scale),
            self._tensors["scale_s"]: scalar(E4M3_MAX), self._tensors["descale_s"]: scalar(1.0 / E4M3_MAX),
            self._tensors["scale_o"]: self._scale_o,
            self._tensors["amax_o"]: self._amax_o,
        }
        self._workspace = torch.empty(self._graph.get_workspace_size(), dtype=torch.uint8, device=dev)
        # Calibrate O's scale: one run for amax(O), then scale_o = 448 / amax(O).
        self()
        amax_o = self._amax_o.reshape(())
        self._scale_o.copy_(torch.where(amax_o > 0, E4M3_MAX / amax_o, torch.ones_like(amax_o)).reshape(1, 1, 1, 1))
        self()

    def __call__(self) -> None:
        """One forward on the current stream (O into self.o, in e4m3)."""
        import cudnn
        handle = _handle(self.o.device.index or 0)
        cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream(self.o.device).cuda_stream)
        self._graph.execute(self._pack, self._workspace, handle=handle)

    def output(self) -> torch.Tensor:
        """O of the last run, dequantized to the inputs' dtype, (batch, seqlen_q, nheads, headdim)."""
        return (self.o.to(torch.float32) / self._scale_o.reshape(())).to(self.out_dtype)


def cudnn_fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                        softmax_scale: Optional[float] = None) -> torch.Tensor:
    """cuDNN's FP8 attention on fp16/bf16 inputs, O in their dtype (see CudnnFp8Attention)."""
    return CudnnFp8Attention(q, k, v, causal=causal, softmax_scale=softmax_scale).output()


__all__ = ["CudnnFp8Attention", "cudnn_fp8_attention", "cudnn_fp8_available"]
