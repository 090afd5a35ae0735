"""FP8 (e4m3) quantization with per-tensor or per-block scales.

A quantized tensor is ``data`` (torch.float8_e4m3fn, the input's shape) and ``scale``
(float32 descale factors): x ~= data * scale, data = e4m3(x * (1 / scale)) with the reciprocal
correctly rounded (``reciprocal``). Scales are amax / 448. A block whose amax / 448
is below the smallest normal float32 (amax < 5.3e-36: an all-zero block, in practice) gets that
smallest normal as its scale and all-zero data. So every scale is a normal number, and a block
at the floor scale is exactly zero, which the FP8 kernel relies on: it keeps O in units of the
current key tile's V scale, and skips the change of units for such a block.

Blocks (``block_size=n``) are n consecutive sequence positions of one (batch, head) of a
(batch, seqlen, nheads, headdim) tensor: scale has shape (batch, nheads, ceil(seqlen / n)).
A seqlen that n does not divide is handled without padding: the last block is shorter and
its scale comes from the rows it has. ``block_size=None`` means one scale for the tensor.

Non-finite inputs are defined, not silent: a block that holds a NaN or +-Inf gets a NaN or
Inf scale, and every element of that block dequantizes to NaN, so attention over it yields
NaN in the affected outputs rather than a finite wrong answer.

The cast rounds to nearest even and saturates finite values to +-448 (as the GPU's
``cvt.rn.satfinite.e4m3x2.f32`` does), not to NaN.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .._validation import check_positive_int, check_tensor

E4M3_MAX = 448.0
_SCALE_FLOOR = torch.finfo(torch.float32).tiny
INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Fp8Tensor(NamedTuple):
    """An e4m3 tensor with its descale factors: x ~= data.float() * scale (broadcast per block)."""

    data: torch.Tensor
    scale: torch.Tensor
    block_size: Optional[int]


def cast_e4m3(x: torch.Tensor) -> torch.Tensor:
    """Round to e4m3 (nearest even), saturating finite values to +-448; NaN stays NaN, +-Inf -> NaN."""
    finite = torch.isfinite(x)
    clamped = torch.where(finite, x.clamp(-E4M3_MAX, E4M3_MAX), torch.full_like(x, float("nan")))
    return clamped.to(torch.float8_e4m3fn)


def block_amax(x: torch.Tensor, block_size: Optional[int]) -> torch.Tensor:
    """amax of |x| per tensor (shape ()) or per (batch, head, block) (shape (B, H, nblocks)).

    NaN propagates (torch.amax does); an Inf gives Inf.
    """
    a = x.abs().to(torch.float32)
    if block_size is None:
        return a.amax()
    batch, seqlen, nheads, headdim = a.shape
    nblocks = -(-seqlen // block_size)
    pad = nblocks * block_size - seqlen
    if pad:
        # Zero rows never raise an amax of |x| >= 0, so padding cannot change a block's scale.
        a = torch.nn.functional.pad(a, (0, 0, 0, 0, 0, pad))
    a = a.view(batch, nblocks, block_size, nheads, headdim)
    return a.amax(dim=(2, 4)).transpose(1, 2).contiguous()


def expand_block_scale(scale: torch.Tensor, seqlen: int, block_size: Optional[int]) -> torch.Tensor:
    """Descale factors broadcastable against (B, S, H, D): per-tensor as is, per-block as (B, S, H, 1)."""
    if block_size is None:
        return scale
    per_row = scale.repeat_interleave(block_size, dim=2)[:, :, :seqlen]  # (B, H, S)
    return per_row.transpose(1, 2).unsqueeze(-1)


def _check_block_size(block_size: object) -> Optional[int]:
    if block_size is None:
        return None
    return check_positive_int(block_size, "block_size")


def reciprocal(scale: torch.Tensor) -> torch.Tensor:
    """1 / scale in fp32, correctly rounded on every device (a tensor division, IEEE on CPU and
    CUDA alike). Quantization multiplies by it rather than dividing each element by the scale:
    the fused kernel then does one division per block, not one per element, and matches this
    reference bit for bit (one correctly rounded product each)."""
    return torch.ones_like(scale) / scale


def quantize_e4m3(x: torch.Tensor, block_size: Optional[int] = None) -> Fp8Tensor:
    """Quantize a (batch, seqlen, nheads, headdim) tensor to e4m3.

    Args:
        x: fp16/bf16/fp32/fp64 tensor in the flash_attn layout.
        block_size: None for one scale per tensor; n for one scale per n sequence positions
            per (batch, head). The last block may be shorter (no padding is needed).

    Returns:
        Fp8Tensor(data, scale, block_size) with x ~= data * scale.
    """
    check_tensor(x, "x", INPUT_DTYPES, ndim=4)
    block_size = _check_block_size(block_size)
    amax = block_amax(x, block_size)
    # Divided by a tensor: IEEE division on every device (CUDA multiplies by 1/448 for a scalar).
    scale = amax / torch.full_like(amax, E4M3_MAX)
    flushed = scale < _SCALE_FLOOR  # False for NaN: a poisoned block stays poisoned
    scale = torch.where(flushed, torch.full_like(scale, _SCALE_FLOOR), scale)
    data = x.to(torch.float32) * expand_block_scale(reciprocal(scale), x.shape[1], block_size)
    data = torch.where(expand_block_scale(flushed, x.shape[1], block_size), torch.zeros_like(data), data)
    return Fp8Tensor(cast_e4m3(data), scale, block_size)


def e4m3_residual(x: torch.Tensor, xq: Fp8Tensor) -> torch.Tensor:
    """The second e4m3 term of x: what ``xq = quantize_e4m3(x, ...)`` misses, in the same units,
    cast_e4m3(x * reciprocal(scale) - data), so x ~= (data + residual) * scale with about 7 significant bits
    instead of 4 (the two terms may be summed in one fp32 GEMM accumulator). Zero in a block at
    the floor scale (whose data is exactly zero); NaN where the data is NaN.

    Args:
        x: the tensor xq was quantized from (same shape).
        xq: its Fp8Tensor.
    """
    check_tensor(x, "x", INPUT_DTYPES, ndim=4)
    if not isinstance(xq, Fp8Tensor):
        raise TypeError(f"xq must be an Fp8Tensor (from quantize_e4m3), got {type(xq).__name__}")
    if xq.data.shape != x.shape:
        raise ValueError(f"xq.data must have x's shape {tuple(x.shape)}, got {tuple(xq.data.shape)}")
    inv_scale = expand_block_scale(reciprocal(xq.scale), x.shape[1], xq.block_size)
    rest = x.to(torch.float32) * inv_scale - xq.data.to(torch.float32)
    flushed = expand_block_scale(xq.scale == _SCALE_FLOOR, x.shape[1], xq.block_size)
    return cast_e4m3(torch.where(flushed, torch.zeros_like(rest), rest))


def dequantize_e4m3(xq: Fp8Tensor) -> torch.Tensor:
    """float32 values of a quantized tensor: data * scale, per block."""
    if not isinstance(xq, Fp8Tensor):
        raise TypeError(f"xq must be an Fp8Tensor (from quantize_e4m3), got {type(xq).__name__}")
    check_tensor(xq.data, "xq.data", (torch.float8_e4m3fn,), ndim=4)
    check_tensor(xq.scale, "xq.scale", (torch.float32,))
    block_size = _check_block_size(xq.block_size)
    batch, seqlen, nheads, _ = xq.data.shape
    if block_size is None:
        expected = ()
    else:
        expected = (batch, nheads, -(-seqlen // block_size))
    if tuple(xq.scale.shape) != expected:
        raise ValueError(f"xq.scale must have shape {expected} for data of shape {tuple(xq.data.shape)} "
                         f"and block_size={block_size}, got {tuple(xq.scale.shape)}")
    return xq.data.to(torch.float32) * expand_block_scale(xq.scale, seqlen, block_size)


__all__ = ["E4M3_MAX", "Fp8Tensor", "cast_e4m3", "block_amax", "expand_block_scale",
           "quantize_e4m3", "e4m3_residual", "dequantize_e4m3"]
