"""Input validation shared by every public function: one place, one wording.

Wrong Python types and dtypes raise ``TypeError``; wrong ranks, shapes, devices and values
raise ``ValueError``. Every message names the argument and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch

QKV_LAYOUT = "(batch, seqlen, nheads, headdim)"

_DTYPE_NAMES = {
    torch.float16: "torch.float16",
    torch.bfloat16: "torch.bfloat16",
    torch.float32: "torch.float32",
    torch.float64: "torch.float64",
    torch.float8_e4m3fn: "torch.float8_e4m3fn",
}


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype))


def dtypes_text(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(dtype_name(d) for d in dtypes)


def check_tensor(x: object, name: str, dtypes: Sequence[torch.dtype], ndim: Optional[int] = None,
                 layout: str = QKV_LAYOUT) -> torch.Tensor:
    """Check that ``x`` is a tensor of one of ``dtypes`` (and rank ``ndim`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} has dtype {dtype_name(x.dtype)}; allowed: {dtypes_text(dtypes)}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor {layout}, got shape {tuple(x.shape)}")
    return x


@dataclass(frozen=True)
class AttentionShape:
    """Sizes of one attention problem in the flash_attn layout."""

    batch: int
    seqlen_q: int
    seqlen_k: int
    nheads: int
    nheads_kv: int
    headdim: int

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 for MHA, nheads for MQA)."""
        return self.nheads // self.nheads_kv


def check_qkv(q: object, k: object, v: object, dtypes: Sequence[torch.dtype],
              same_dtype: bool = True) -> AttentionShape:
    """Validate q (B, Sq, H, D), k and v (B, Sk, Hkv, D); return the problem's sizes."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(x, name, dtypes, ndim=4)
    if same_dtype and not (q.dtype == k.dtype == v.dtype):
        raise TypeError("q, k and v must have the same dtype, got "
                        f"q {dtype_name(q.dtype)}, k {dtype_name(k.dtype)}, v {dtype_name(v.dtype)}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k and v must be on the same device, got q on {q.device}, "
                         f"k on {k.device}, v on {v.device}")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    batch, seqlen_q, nheads, headdim = q.shape
    if k.shape[0] != batch:
        raise ValueError(f"k and v must have the batch size of q ({batch}), got {k.shape[0]}")
    if k.shape[3] != headdim:
        raise ValueError(f"k and v must have the head dim of q ({headdim}), got {k.shape[3]}")
    seqlen_k, nheads_kv = k.shape[1], k.shape[2]
    for name, size in (("batch", batch), ("seqlen_q", seqlen_q), ("seqlen_k", seqlen_k),
                       ("nheads", nheads), ("nheads_kv", nheads_kv), ("headdim", headdim)):
        if size < 1:
            raise ValueError(f"{name} must be >= 1, got {size} (q {tuple(q.shape)}, k {tuple(k.shape)})")
    if nheads % nheads_kv != 0:
        raise ValueError(f"nheads of q ({nheads}) must be divisible by nheads of k and v ({nheads_kv})")
    return AttentionShape(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim)


def check_softmax_scale(softmax_scale: object, headdim: int) -> float:
    """Return the softmax scale to use: headdim**-0.5 when None, else a finite float."""
    if softmax_scale is None:
        return headdim ** -0.5
    if isinstance(softmax_scale, bool) or not isinstance(softmax_scale, (int, float)):
        raise TypeError(f"softmax_scale must be a float or None, got {type(softmax_scale).__name__}")
    if not math.isfinite(softmax_scale) or softmax_scale < 0:
        # The kernels take row maxima of raw scores: a negative scale would turn them into minima.
        raise ValueError(f"softmax_scale must be finite and >= 0, got {softmax_scale}")
    return float(softmax_scale)


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_power_of_two(value: int, name: str) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two (1, 2, 4, ..., 128, 256, ...), got {value}")
    return value
