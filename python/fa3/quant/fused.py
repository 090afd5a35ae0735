"""FP8 block quantization on the GPU: one fused kernel per tensor (hopper/quantize_fp8.cu).

``quantize_blocks_cuda`` equals the reference ``quantize_e4m3(hadamard_rotate(x, seed), block_size)``
(or ``quantize_e4m3(x, block_size)`` without a seed) bit for bit, in one read of x and one write
of the e4m3 data (and, with ``residual=True``, of the second e4m3 term ``e4m3_residual``). With
``v_layout=True`` the data comes out as the FP8 attention kernel's V^T
(fa3.quant.layout). The work is the torch.library custom op ``fa3::quantize_fp8_blocks`` with a
fake implementation, so it traces under torch.compile; metadata checks happen before the op.
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple, Union

import torch

from .._ext import require_hopper
from .._validation import check_bool, check_positive_int, check_tensor
from .hadamard import _check_seed, rotation_multipliers
from .layout import KEY_GROUP, padded_seqlen

KERNEL_DTYPES = (torch.float16, torch.bfloat16)
HEAD_DIMS = (64, 128, 256)
MAX_BLOCK_SIZE = 256  # kQuantizeMaxBlock in hopper/quantize_fp8.h
_DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}  # fa3::Dtype in hopper/flash_params.h


def _output_shapes(x: torch.Tensor, block_size: int, v_layout: bool):
    batch, seqlen, nheads, headdim = x.shape
    data = (batch, nheads, headdim, padded_seqlen(seqlen)) if v_layout else (batch, seqlen, nheads, headdim)
    return data, (batch, nheads, -(-seqlen // block_size))


@functools.lru_cache(maxsize=None)
def _rotation_signs(headdim: int, seed: int, device: torch.device) -> torch.Tensor:
    """The very vector hadamard_rotate multiplies by; cached, since drawing it costs a CPU
    generator and a copy."""
    return rotation_multipliers(headdim, seed, device)


@torch.library.custom_op("fa3::quantize_fp8_blocks", mutates_args=(), device_types="cuda")
def quantize_fp8_blocks(x: torch.Tensor, block_size: int, seed: Optional[int], v_layout: bool,
                        residual: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(data, scale, residual) of x in e4m3 with one scale per block_size rows, rotated first by the
    Hadamard matrix of `seed` (None: no rotation); residual is e4m3_residual's second term, or an
    empty tensor when not asked for. The seed, not the signs, is the op's input:
    drawing the signs (a CPU generator) stays inside the op, out of torch.compile's graph.
    The arguments are those that ``check_quantize_args`` accepts."""
    ext = require_hopper(x.device, "fa3.quant.quantize_blocks_cuda")
    data_shape, scale_shape = _output_shapes(x, block_size, v_layout)
    data = torch.empty(data_shape, dtype=torch.float8_e4m3fn, device=x.device)
    rest = torch.empty(data_shape if residual else (0,), dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty(scale_shape, dtype=torch.float32, device=x.device)
    signs_ptr = 0 if seed is None else _rotation_signs(x.shape[-1], seed, x.device).data_ptr()
    batch, seqlen, nheads, headdim = x.shape
    with torch.cuda.device(x.device):
        ext.quantize_fp8(x.data_ptr(), (x.stride(0), x.stride(1), x.stride(2)), data.data_ptr(),
                         rest.data_ptr() if residual else 0, scale.data_ptr(), signs_ptr, batch, seqlen, nheads,
                         headdim, block_size,
                         _DTYPE_CODES[x.dtype], v_layout, torch.cuda.current_stream().cuda_stream)
    return data, scale, rest


@quantize_fp8_blocks.register_fake
def _quantize_fp8_blocks_fake(x, block_size, seed, v_layout, residual):
    data_shape, scale_shape = _output_shapes(x, block_size, v_layout)
    return (x.new_empty(data_shape, dtype=torch.float8_e4m3fn), x.new_empty(scale_shape, dtype=torch.float32),
            x.new_empty(data_shape if residual else (0,), dtype=torch.float8_e4m3fn))


def check_quantize_args(x: object, block_size: object, v_layout: object, seed: object = None,
                        residual: object = False) -> None:
    """Everything about the arguments that the kernel needs, checked from metadata alone."""
    check_tensor(x, "x", KERNEL_DTYPES, ndim=4)
    headdim = x.shape[-1]
    if headdim not in HEAD_DIMS:
        raise ValueError(f"head dim {headdim} is not supported; allowed: {', '.join(map(str, HEAD_DIMS))}")
    check_positive_int(block_size, "block_size")
    if block_size > MAX_BLOCK_SIZE:
        raise ValueError(f"block_size must be <= {MAX_BLOCK_SIZE}, got {block_size}")
    check_bool(v_layout, "v_layout")
    check_bool(residual, "residual")
    if residual and v_layout:
        raise ValueError("residual=True is for Q and K; it cannot be combined with v_layout=True")
    if seed is not None:
        _check_seed(seed)
    if v_layout and block_size % KEY_GROUP:
        raise ValueError(f"block_size must be a multiple of {KEY_GROUP} with v_layout=True "
                         f"(V^T relabels keys in groups of {KEY_GROUP}), got {block_size}")
    if x.stride(-1) != 1:
        raise ValueError(f"x must have a contiguous last dim (stride 1), got strides {tuple(x.stride())}")
    if x.device.type != "cuda":
        raise ValueError(f"x must be a CUDA tensor on a Hopper GPU, got a tensor on {x.device}")


def quantize_blocks_cuda(x: torch.Tensor, block_size: int, seed: Optional[int] = None,
                         v_layout: bool = False, residual: bool = False
                         ) -> Union[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Block-quantize x to e4m3 in one kernel, optionally rotated and in the V^T layout.

    Args:
        x: (batch, seqlen, nheads, headdim), fp16 or bf16, on a Hopper GPU; head dims 64, 128,
            256; any strides with a contiguous last dim.
        block_size: rows per scale, 1..256 (the FP8 attention kernel's tile: e.g. 128 for Q,
            its key tile for K and V); the last block of a sequence may be shorter.
        seed: None for no rotation; else rotate along the head dim first, as
            ``hadamard_rotate(x, seed)`` (Q and K with the same seed).
        v_layout: write the data as V^T (fa3.quant.layout.to_v_layout); block_size must then be
            a multiple of 16.
        residual: also return the second e4m3 term, ``e4m3_residual`` of the (rotated) x: x ~=
            (data + residual) * scale (not with v_layout).

    Returns:
        (data, scale): data float8_e4m3fn, (batch, seqlen, nheads, headdim) or with v_layout
        (batch, nheads, headdim, ceil(seqlen / 16) * 16); scale float32 (batch, nheads,
        ceil(seqlen / block_size)), x ~= data * scale per block. Equal, bit for bit, to
        ``quantize_e4m3(hadamard_rotate(x, seed) if seed is not None else x, block_size)``
        (and its ``to_v_layout(data)`` with v_layout). With ``residual``: (data, scale, residual),
        residual like data, equal bit for bit to ``e4m3_residual`` of the same input.
    """
    check_quantize_args(x, block_size, v_layout, seed, residual)
    data, scale, rest = quantize_fp8_blocks(x, block_size, seed, v_layout, residual)
    return (data, scale, rest) if residual else (data, scale)


__all__ = ["quantize_blocks_cuda", "quantize_fp8_blocks", "check_quantize_args", "MAX_BLOCK_SIZE"]
