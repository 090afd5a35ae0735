"""FP8 (e4m3) attention on Hopper: quantization of fp16/bf16 Q, K, V (per-block scales, Hadamard
incoherent processing) and the FP8 forward kernel.

One kernel, three ways in:

- ``fp8_attention(q, k, v, ...)`` on fp16/bf16 tensors: ``quantize_fp8`` then ``flash_attn_fp8``,
  a drop-in for ``flash_attn_func`` when FP8 speed is wanted.
- ``quantize_fp8(q, k, v, ...)`` returns an ``Fp8QKV``: e4m3 tensors in the kernel's layout and
  their descale factors; ``flash_attn_fp8(qkv, ...)`` runs the kernel on it.
- ``flash_attn_func(q8, k8, v8, q_descale=..., k_descale=..., v_descale=...)`` with e4m3 tensors
  in the flash_attn layout (``Fp8QKV.from_flash_layout``; V is rewritten once into the kernel's
  layout, an extra pass over V).

The kernel's layout: q (batch, seqlen_q, nheads, headdim) and k (batch, seqlen_k, nheads_kv,
headdim) as usual; V transposed, (batch, nheads_kv, headdim, seqlen_k rounded up to 16), with the
keys relabeled inside groups of 16 (``fa3.quant.layout``): the e4m3 tensor-core GEMM reads V with
the keys contiguous, and the relabeling lets P go from the first GEMM's registers to the second's
without moving values between threads. Descale factors (x ~= data * descale, float32) are one per
block, (batch, heads, nblocks), where the blocks are the kernel's tiles (``fp8_block_sizes``:
block_m query rows for q, block_n keys for k and v); one per head, (batch, heads); or one per
tensor, shape ().

At head dim 64, ``q_residual=True`` quantizes Q as two e4m3 terms, q + q_residual
(``Fp8QKV.q_residual``): the kernel's S GEMM runs over both against K, which takes Q's rounding
error from e4m3's 4 significant bits to about 7. At head dim 64 that rounding sets much of the
FP8 error (K's is the other half): on the FA3 paper's outlier inputs the RMSE falls by about 20%
(2.3-2.5x -> 2.8-3.1x below standard per-tensor FP8), and the kernel is about 13% slower (H100,
16k tokens: 690 -> 601 TFLOP/s). Off by default, as speed is what FP8 is for; see the README.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import torch

from ._ext import require_hopper
from ._validation import check_bool, check_qkv, check_softmax_scale, check_tensor, dtypes_text
from .flash_attn import check_alignment, check_layout, strides
from .quant.e4m3 import e4m3_residual, quantize_e4m3
from .quant.fused import quantize_blocks_cuda
from .quant.hadamard import hadamard_rotate
from .quant.layout import to_v_layout

E4M3 = torch.float8_e4m3fn
INPUT_DTYPES = (torch.float16, torch.bfloat16)
OUT_DTYPES = (torch.bfloat16, torch.float16)
_DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}  # fa3::Dtype in hopper/flash_params.h


# The FP8 kernel's (block_m, block_n) per head dim (fwd_tile_size in hopper/tile_size.h; a test
# checks that the extension agrees). A plain dict: the emulation and the accuracy report use it
# without the extension, and torch.compile traces it (a pybind11 call it cannot).
FP8_TILES: Dict[int, Tuple[int, int]] = {64: (192, 160), 128: (128, 192), 256: (128, 128)}
Q_RESIDUAL_HEAD_DIMS = (64,)  # head dims with kernels for Q's second e4m3 term (flash_params.h)


def fp8_block_sizes(headdim: int) -> Tuple[int, int]:
    """(block_m, block_n) of the FP8 kernel for ``headdim``: its query and key tiles, which are
    also the quantization blocks of Q and of K and V."""
    if headdim not in FP8_TILES:
        raise ValueError(f"head dim {headdim} is not supported; allowed: {', '.join(map(str, FP8_TILES))}")
    return FP8_TILES[headdim]


class Fp8QKV(NamedTuple):
    """Quantized attention inputs in the FP8 kernel's layout (see the module docstring).

    q: (batch, seqlen_q, nheads, headdim) e4m3; k: (batch, seqlen_k, nheads_kv, headdim) e4m3;
    v_t: (batch, nheads_kv, headdim, seqlen_k rounded up to 16) e4m3, keys relabeled in groups
    of 16. Descales are float32 of shape () (per tensor), (batch, heads) (per head) or (batch,
    heads, nblocks) (per kernel tile). q_residual: None, or (head dim 64) Q's second e4m3 term,
    laid out as q with q's descales: Q ~= (q + q_residual) * q_descale (``fa3.quant.e4m3_residual``).
    """

    q: torch.Tensor
    k: torch.Tensor
    v_t: torch.Tensor
    q_descale: torch.Tensor
    k_descale: torch.Tensor
    v_descale: torch.Tensor
    q_residual: Optional[torch.Tensor] = None

    @classmethod
    def from_flash_layout(cls, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          q_descale: Optional[torch.Tensor] = None, k_descale: Optional[torch.Tensor] = None,
                          v_descale: Optional[torch.Tensor] = None) -> "Fp8QKV":
        """From e4m3 q, k, v in the flash_attn layout (V is rewritten in the kernel's layout).
        A missing descale means 1."""
        check_qkv(q, k, v, (E4M3,))
        ones = q.new_ones((), dtype=torch.float32)
        return cls(q, k, to_v_layout(v),
                   *(ones if d is None else d for d in (q_descale, k_descale, v_descale)))


def _descale_3d(descale: object, name: str, batch: int, heads: int, seqlen: int, block: int, block_name: str,
                device: torch.device) -> torch.Tensor:
    """A descale argument as a (batch, heads, nblocks) view (stride 0 where it is shared)."""
    check_tensor(descale, name, (torch.float32,))
    nblocks = -(-seqlen // block)
    shapes = {(): "per tensor", (1,): "per tensor", (batch, heads): "per head",
              (batch, heads, nblocks): f"per block of {block} ({block_name})"}
    if tuple(descale.shape) not in shapes:
        raise ValueError(f"{name} must have shape () or (1,) (per tensor), ({batch}, {heads}) (per head) or "
                         f"({batch}, {heads}, {nblocks}) (one per {block} {block_name}, the FP8 kernel's tile), "
                         f"got {tuple(descale.shape)}")
    if descale.device != device:
        raise ValueError(f"{name} must be on {device} with the tensors it describes, got {descale.device}")
    if descale.dim() <= 1:
        return descale.reshape(()).expand(batch, heads, nblocks)
    if descale.dim() == 2:
        return descale.unsqueeze(-1).expand(batch, heads, nblocks)
    return descale


@torch.library.custom_op("fa3::fwd_fp8", mutates_args=(), device_types="cuda")
def _fwd_fp8(q: torch.Tensor, k: torch.Tensor, v_t: torch.Tensor, q_descale: torch.Tensor, k_descale: torch.Tensor,
             v_descale: torch.Tensor, q_residual: Optional[torch.Tensor], softmax_scale: float, causal: bool,
             out_dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Descales are (batch, heads, nblocks) views (flash_fwd's DescaleStrides take their strides);
    q_residual is None or has q's shape and strides."""
    ext = require_hopper(q.device, "fa3 FP8 attention")
    for name, x in (("q", q), ("k", k), ("v_t", v_t), ("q_residual", q_residual)):
        if x is not None:
            check_alignment(x, name)
    batch, seqlen_q, nheads, headdim = q.shape
    seqlen_k, nheads_kv = k.shape[1], k.shape[2]
    out = torch.empty(q.shape, dtype=out_dtype, device=q.device)
    lse = torch.empty((batch, nheads, seqlen_q), dtype=torch.float32, device=q.device)
    with torch.cuda.device(q.device):
        ext.fwd_fp8(q.data_ptr(), k.data_ptr(), v_t.data_ptr(), out.data_ptr(), lse.data_ptr(),
                    strides(q), strides(k), (v_t.stride(0), v_t.stride(2), v_t.stride(1)), strides(out),
                    q_descale.data_ptr(), q_descale.stride(), k_descale.data_ptr(), k_descale.stride(),
                    v_descale.data_ptr(), v_descale.stride(), 0 if q_residual is None else q_residual.data_ptr(),
                    batch, seqlen_q, seqlen_k, v_t.shape[3], nheads, nheads_kv, headdim,
                    softmax_scale, causal, _DTYPE_CODES[out_dtype], torch.cuda.current_stream().cuda_stream)
    return out, lse


@_fwd_fp8.register_fake
def _fwd_fp8_fake(q, k, v_t, q_descale, k_descale, v_descale, q_residual, softmax_scale, causal, out_dtype):
    batch, seqlen_q, nheads, _ = q.shape
    return q.new_empty(q.shape, dtype=out_dtype), q.new_empty((batch, nheads, seqlen_q), dtype=torch.float32)


def _check_out_dtype(out_dtype: object) -> torch.dtype:
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {dtypes_text(OUT_DTYPES)}, got {out_dtype}")
    return out_dtype


def flash_attn_fp8(qkv: Fp8QKV, causal: bool = False, softmax_scale: Optional[float] = None,
                   return_lse: bool = False, out_dtype: torch.dtype = torch.bfloat16
                   ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """The FP8 forward kernel on quantized inputs (``quantize_fp8`` or ``Fp8QKV.from_flash_layout``).

    Args:
        qkv: an Fp8QKV (e4m3 data in the kernel's layout and float32 descales).
        causal: causal mask aligned to the bottom-right corner.
        softmax_scale: scale of QK^T (of the dequantized values), default headdim**-0.5; must be >= 0.
        return_lse: also return the LSE, float32, natural log, (batch, nheads, seqlen_q).
        out_dtype: torch.bfloat16 (default) or torch.float16.

    Returns:
        O (batch, seqlen_q, nheads, headdim) in out_dtype; with ``return_lse``, (O, LSE).
    """
    if not isinstance(qkv, Fp8QKV):
        raise TypeError(f"qkv must be an fa3.Fp8QKV (from fa3.quantize_fp8), got {type(qkv).__name__}")
    q, k, v_t = qkv.q, qkv.k, qkv.v_t
    shape = check_qkv(q, k, k, (E4M3,))
    check_tensor(v_t, "qkv.v_t", (E4M3,), ndim=4, layout="(batch, nheads_kv, headdim, seqlen_k padded to 16)")
    padded = -(-shape.seqlen_k // 16) * 16
    expected = (shape.batch, shape.nheads_kv, shape.headdim, padded)
    if tuple(v_t.shape) != expected:
        raise ValueError(f"qkv.v_t must have shape {expected} (batch, nheads_kv, headdim, seqlen_k rounded up to 16) "
                         f"for k of shape {tuple(k.shape)}, got {tuple(v_t.shape)}")
    if v_t.device != q.device:
        raise ValueError(f"qkv.v_t must be on {q.device} with q and k, got {v_t.device}")
    block_m, block_n = fp8_block_sizes(shape.headdim)
    for name, x in (("qkv.q", q), ("qkv.k", k)):
        check_layout(x, name)
    if v_t.stride(-1) != 1 or any(v_t.stride(i) % 16 for i in range(3) if v_t.shape[i] > 1):
        raise ValueError(f"qkv.v_t must have a contiguous last dim and other strides that are multiples of 16, "
                         f"got strides {tuple(v_t.stride())}")
    if q.device.type != "cuda":
        raise ValueError(f"FP8 attention needs CUDA tensors on a Hopper GPU, got tensors on {q.device}")
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    check_bool(causal, "causal")
    check_bool(return_lse, "return_lse")
    out_dtype = _check_out_dtype(out_dtype)
    q_ds = _descale_3d(qkv.q_descale, "q_descale", shape.batch, shape.nheads, shape.seqlen_q, block_m,
                       "query rows", q.device)
    k_ds = _descale_3d(qkv.k_descale, "k_descale", shape.batch, shape.nheads_kv, shape.seqlen_k, block_n, "keys",
                       q.device)
    v_ds = _descale_3d(qkv.v_descale, "v_descale", shape.batch, shape.nheads_kv, shape.seqlen_k, block_n, "keys",
                       q.device)
    q_residual = qkv.q_residual
    if q_residual is not None:
        check_tensor(q_residual, "qkv.q_residual", (E4M3,), ndim=4)
        if shape.headdim not in Q_RESIDUAL_HEAD_DIMS:
            raise ValueError(f"qkv.q_residual is supported at head dim {_dims_text(Q_RESIDUAL_HEAD_DIMS)} only, "
                             f"got head dim {shape.headdim}")
        if q_residual.shape != q.shape or q_residual.stride() != q.stride() or q_residual.device != q.device:
            raise ValueError(f"qkv.q_residual must have q's shape {tuple(q.shape)}, strides {tuple(q.stride())} "
                             f"and device {q.device}, got {tuple(q_residual.shape)}, {tuple(q_residual.stride())} "
                             f"and {q_residual.device}")
    out, lse = _fwd_fp8(q, k, v_t, q_ds, k_ds, v_ds, q_residual, scale, causal, out_dtype)
    return (out, lse) if return_lse else out


def _dims_text(dims: Tuple[int, ...]) -> str:
    return ", ".join(map(str, dims))


def _check_q_residual(q_residual: bool, headdim: int) -> None:
    check_bool(q_residual, "q_residual")
    if q_residual and headdim not in Q_RESIDUAL_HEAD_DIMS:
        raise ValueError(f"q_residual=True is supported at head dim {_dims_text(Q_RESIDUAL_HEAD_DIMS)} only, "
                         f"got head dim {headdim}")


def quantize_fp8(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, block_quant: bool = True,
                 hadamard: bool = True, seed: int = 0, q_residual: bool = False) -> Fp8QKV:
    """Quantize fp16/bf16 q, k, v to e4m3 in the FP8 kernel's layout.

    Args:
        q: (batch, seqlen_q, nheads, headdim); k, v: (batch, seqlen_k, nheads_kv, headdim);
            fp16 or bf16 CUDA tensors, head dim 64, 128 or 256.
        block_quant: one scale per kernel tile (block_m query rows of Q, block_n keys of K and V,
            per head; ``fp8_block_sizes``), in one fused pass per tensor. False: one scale per
            tensor (several PyTorch passes; for accuracy comparisons).
        hadamard: rotate Q and K along the head dim by the seeded random Hadamard matrix before
            quantizing (incoherent processing: QK^T is unchanged, outliers are spread out).
        seed: seed of the Hadamard signs (``fa3.quant.random_signs``).
        q_residual: also quantize what Q's e4m3 data misses, as a second e4m3 term with the same
            descales (``Fp8QKV.q_residual``), which the kernel adds into its S GEMM: Q with about
            7 significant bits: about 20% lower error at head dim 64, where Q's rounding sets
            much of it, for about 13% of the kernel's speed. Supported at head dim 64 only.

    Returns:
        Fp8QKV. A block holding NaN or Inf gets a NaN or Inf descale, so attention over it gives NaN
        instead of a finite wrong answer (as fa3.quant.quantize_e4m3).
    """
    shape = check_qkv(q, k, v, INPUT_DTYPES)
    block_m, block_n = fp8_block_sizes(shape.headdim)  # also the check of the head dim
    check_bool(block_quant, "block_quant")
    check_bool(hadamard, "hadamard")
    _check_q_residual(q_residual, shape.headdim)
    if q.device.type != "cuda":
        raise ValueError(f"quantize_fp8 needs CUDA tensors on a Hopper GPU, got tensors on {q.device}")
    if block_quant:
        rotation_seed = seed if hadamard else None
        q8, q_ds, *q_rest = quantize_blocks_cuda(q, block_m, seed=rotation_seed, residual=q_residual)
        k8, k_ds = quantize_blocks_cuda(k, block_n, seed=rotation_seed)
        v_t, v_ds = quantize_blocks_cuda(v, block_n, v_layout=True)
        return Fp8QKV(q8, k8, v_t, q_ds, k_ds, v_ds, q_rest[0] if q_residual else None)
    if hadamard:
        q, k = hadamard_rotate(q, seed), hadamard_rotate(k, seed)
    qq, kq, vq = (quantize_e4m3(x) for x in (q, k, v))
    return Fp8QKV(qq.data, kq.data, to_v_layout(vq.data), qq.scale, kq.scale, vq.scale,
                  e4m3_residual(q, qq) if q_residual else None)


def fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                  softmax_scale: Optional[float] = None, block_quant: bool = True, hadamard: bool = True,
                  seed: int = 0, return_lse: bool = False, out_dtype: Optional[torch.dtype] = None,
                  q_residual: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """FP8 attention on fp16/bf16 inputs: ``quantize_fp8`` then the FP8 kernel, in the layout and
    conventions of ``flash_attn_func``.

    Args:
        q, k, v, causal, softmax_scale, return_lse: as ``fa3.flash_attn_func``.
        block_quant, hadamard, seed, q_residual: as ``quantize_fp8``.
        out_dtype: dtype of O, default q's (fp16 or bf16).
    """
    qkv = quantize_fp8(q, k, v, block_quant=block_quant, hadamard=hadamard, seed=seed,
                       q_residual=q_residual)  # validates q, k, v
    return flash_attn_fp8(qkv, causal=causal, softmax_scale=softmax_scale, return_lse=return_lse,
                          out_dtype=q.dtype if out_dtype is None else out_dtype)


__all__ = ["Fp8QKV", "flash_attn_fp8", "fp8_attention", "fp8_block_sizes", "quantize_fp8"]
