"""fa3.flash_attn_func: the fp16/bf16 forward kernel from PyTorch (and, for e4m3 inputs with
descales, the FP8 kernel through fa3.fp8).

Registered as the torch.library custom op ``fa3::fwd`` with a fake (meta) implementation, so
it runs under ``torch.compile(fullgraph=True)`` without graph breaks. Validation that needs
only tensor metadata happens in ``flash_attn_func`` (it traces); checks that need real
pointers or the GPU (alignment, Hopper) happen in the op's implementation.
"""

from typing import Optional, Tuple, Union

import torch

from ._ext import require_hopper
from ._validation import AttentionShape, check_bool, check_qkv, check_softmax_scale
from .flash_attn_bwd import attach_autograd

KERNEL_DTYPES = (torch.float16, torch.bfloat16)
HEAD_DIMS = (64, 128, 256)
_DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}  # fa3::Dtype in hopper/flash_params.h
_TMA_ALIGN_BYTES = 16  # TMA needs 16-byte aligned base addresses and strides


def check_layout(x: torch.Tensor, name: str) -> None:
    """Metadata-only checks (safe while tracing): contiguous head dim, 16-byte strides."""
    if x.stride(-1) != 1:
        raise ValueError(f"{name} must have a contiguous last dim (stride 1), got strides {tuple(x.stride())}")
    elems = _TMA_ALIGN_BYTES // x.element_size()
    for dim, label in ((0, "batch"), (1, "seqlen"), (2, "nheads")):
        if x.shape[dim] > 1 and x.stride(dim) % elems:
            raise ValueError(f"{name}'s {label} stride must be a multiple of {elems} elements (16 bytes), "
                             f"got strides {tuple(x.stride())}")


def check_alignment(x: torch.Tensor, name: str) -> None:
    if x.data_ptr() % _TMA_ALIGN_BYTES:
        raise ValueError(f"{name} must start at a 16-byte aligned address, got {x.data_ptr():#x} "
                         f"(a view at an odd offset; use .contiguous() or .clone())")


def strides(x: torch.Tensor) -> Tuple[int, int, int]:
    return x.stride(0), x.stride(1), x.stride(2)


@torch.library.custom_op("fa3::fwd", mutates_args=(), device_types="cuda")
def _fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, softmax_scale: float, causal: bool,
         schedule: int = 0, stream_k: bool = True, deterministic: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """schedule: 0 the build's default; 1-4 one schedule by name (FwdSchedule in hopper/flash_params.h).
    stream_k: let the persistent kernel cut its last tiles between CTAs to balance the last wave
    (hopper/stream_k_plan.h); False only to measure what that buys. deterministic: for the
    backward only (flash_attn_bwd.py); the forward is deterministic either way."""
    ext = require_hopper(q.device, "fa3.flash_attn_func")
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_alignment(x, name)
    batch, seqlen_q, nheads, headdim = q.shape
    seqlen_k, nheads_kv = k.shape[1], k.shape[2]
    dtype = _DTYPE_CODES[q.dtype]
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, nheads, seqlen_q), dtype=torch.float32, device=q.device)
    with torch.cuda.device(q.device):
        nbytes = ext.fwd_workspace_bytes(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, dtype,
                                         schedule, stream_k)
        workspace = torch.empty(nbytes, dtype=torch.uint8, device=q.device) if nbytes else None
        ext.fwd(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr(),
                strides(q), strides(k), strides(v), strides(out),
                batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim,
                softmax_scale, causal, dtype, schedule, stream_k,
                workspace.data_ptr() if workspace is not None else 0, nbytes,
                torch.cuda.current_stream().cuda_stream)
    return out, lse


@_fwd.register_fake
def _fwd_fake(q, k, v, softmax_scale, causal, schedule=0, stream_k=True, deterministic=False):
    batch, seqlen_q, nheads, _ = q.shape
    return torch.empty_like(q, memory_format=torch.contiguous_format), \
        q.new_empty((batch, nheads, seqlen_q), dtype=torch.float32)


attach_autograd(_fwd)


def check_fwd_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> AttentionShape:
    """Everything about q, k, v that the kernel needs, checked from metadata alone."""
    shape = check_qkv(q, k, v, KERNEL_DTYPES)
    if shape.headdim not in HEAD_DIMS:
        raise ValueError(f"head dim {shape.headdim} is not supported; allowed: {', '.join(map(str, HEAD_DIMS))}")
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_layout(x, name)
    if q.device.type != "cuda":
        raise ValueError(f"q, k and v must be CUDA tensors on a Hopper GPU, got tensors on {q.device}")
    return shape


def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, softmax_scale: Optional[float] = None,
                    causal: bool = False, return_lse: bool = False, *, q_descale: Optional[torch.Tensor] = None,
                    k_descale: Optional[torch.Tensor] = None, v_descale: Optional[torch.Tensor] = None,
                    out_dtype: Optional[torch.dtype] = None, deterministic: bool = False
                    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Attention on Hopper, in the layout and conventions of flash_attn_func.

    Args:
        q: (batch, seqlen_q, nheads, headdim), fp16, bf16 or float8_e4m3fn, CUDA.
        k, v: (batch, seqlen_k, nheads_kv, headdim), same dtype; nheads % nheads_kv == 0.
            Head dims 64, 128, 256; any seqlens >= 1; any strides with a contiguous last dim
            that are multiples of 16 bytes, on 16-byte aligned data (TMA's rules).
        softmax_scale: scale of QK^T, default headdim**-0.5; must be >= 0.
        causal: causal mask aligned to the bottom-right corner (as FlashAttention >= 2.1).
        return_lse: also return the log-sum-exp, fp32, natural log, (batch, nheads, seqlen_q).
            Rows that see no key give O = 0 and LSE = -inf.
        q_descale, k_descale, v_descale: e4m3 inputs only: float32 descale factors (x ~= data *
            descale), shape () per tensor, (batch, heads) per head, or (batch, heads, nblocks) per
            tile of the FP8 kernel (``fa3.fp8_block_sizes``); None means 1. V is rewritten once
            into the FP8 kernel's layout (``fa3.fp8``); ``fa3.quantize_fp8`` produces it directly.
        out_dtype: e4m3 inputs only: torch.bfloat16 (default) or torch.float16.
        deterministic: make the backward bitwise reproducible (dQ's sums over key tiles in a fixed
            order; slower). The default backward adds them in whatever order the GPU runs.

    Gradients (fp16/bf16, head dims 64 and 128): q, k and v get theirs through autograd; the
    backward recomputes the attention matrix from q, k, v, O and the LSE. The LSE is not
    differentiable.

    Returns:
        O (batch, seqlen_q, nheads, headdim) in q's dtype (out_dtype for e4m3); with
        ``return_lse``, (O, LSE).
    """
    if isinstance(q, torch.Tensor) and q.dtype == torch.float8_e4m3fn:
        from .fp8 import Fp8QKV, flash_attn_fp8  # fp8 builds on this module
        qkv = Fp8QKV.from_flash_layout(q, k, v, q_descale, k_descale, v_descale)
        return flash_attn_fp8(qkv, causal=causal, softmax_scale=softmax_scale, return_lse=return_lse,
                              out_dtype=torch.bfloat16 if out_dtype is None else out_dtype)
    for name, given in (("q_descale", q_descale), ("k_descale", k_descale), ("v_descale", v_descale),
                        ("out_dtype", out_dtype)):
        if given is not None:
            raise ValueError(f"{name} is for float8_e4m3fn inputs only; q has dtype {q.dtype if isinstance(q, torch.Tensor) else type(q).__name__}")
    shape = check_fwd_inputs(q, k, v)
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    check_bool(causal, "causal")
    check_bool(return_lse, "return_lse")
    check_bool(deterministic, "deterministic")
    out, lse = _fwd(q, k, v, scale, causal, 0, True, deterministic)
    return (out, lse) if return_lse else out


__all__ = ["flash_attn_func", "HEAD_DIMS", "KERNEL_DTYPES"]
