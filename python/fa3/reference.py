"""Reference attention: exact (float64) and "standard" (unfused, in a chosen precision).

``attention_ref`` is the ground truth every kernel and every emulation is compared with.
``standard_attention`` is the baseline a fused kernel must not be worse than: the textbook
three steps (S = QK^T, P = softmax(S), O = PV) with each intermediate stored in ``dtype``.

Conventions (DESIGN.md, as flash_attn_func): q (B, Sq, H, D), k and v (B, Sk, Hkv, D) with
H % Hkv == 0 (query head h reads key/value head h // (H / Hkv)); softmax_scale defaults to
D**-0.5; causal masks are aligned to the bottom-right corner, so query i sees key j iff
j <= i + Sk - Sq; a query row that sees no key gives O = 0 and LSE = -inf. LSE is the natural
log of the softmax denominator, shape (B, H, Sq).
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple, Union

import torch

from ._validation import (AttentionShape, check_bool, check_qkv, check_softmax_scale, dtype_name,
                          dtypes_text)

# Chunks of query rows bound the memory of the (rows x Sk) score matrix per step.
_SCORE_ELEMENTS_PER_CHUNK = 1 << 25

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
STANDARD_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float8_e4m3fn)


def causal_mask(seqlen_q: int, seqlen_k: int, row_start: int = 0, row_end: Optional[int] = None,
                device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Boolean (rows, Sk) mask, True where query row i may attend to key j (bottom-right aligned)."""
    row_end = seqlen_q if row_end is None else row_end
    rows = torch.arange(row_start, row_end, device=device).unsqueeze(1)
    cols = torch.arange(seqlen_k, device=device).unsqueeze(0)
    return cols <= rows + (seqlen_k - seqlen_q)


def _row_chunks(shape: AttentionShape) -> Iterator[Tuple[int, int]]:
    per_row = shape.batch * shape.nheads * shape.seqlen_k
    step = max(1, _SCORE_ELEMENTS_PER_CHUNK // per_row)
    for start in range(0, shape.seqlen_q, step):
        yield start, min(shape.seqlen_q, start + step)


def expand_kv_heads(x: torch.Tensor, nheads: int) -> torch.Tensor:
    """(B, S, Hkv, D) -> (B, S, H, D): key/value head h // (H/Hkv) serves query head h."""
    return x.repeat_interleave(nheads // x.shape[2], dim=2) if x.shape[2] != nheads else x


def _leading_empty_rows(shape: AttentionShape, causal: bool, start: int, end: int) -> int:
    """How many rows at the top of chunk [start, end) see no key (causal with Sq > Sk)."""
    if not causal:
        return 0
    return max(0, min(end, shape.seqlen_q - shape.seqlen_k) - start)


def _masked_scores(s: torch.Tensor, shape: AttentionShape, causal: bool, start: int, end: int) -> torch.Tensor:
    if causal:
        keep = causal_mask(shape.seqlen_q, shape.seqlen_k, start, end, s.device)
        s = s.masked_fill(~keep, float("-inf"))
    return s


def attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                  softmax_scale: Optional[float] = None, return_lse: bool = False
                  ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Exact attention in float64 on the inputs' device.

    Args:
        q: (batch, seqlen_q, nheads, headdim), any floating dtype (fp8 is upcast exactly).
        k, v: (batch, seqlen_k, nheads_kv, headdim); nheads % nheads_kv == 0.
        causal: bottom-right aligned causal mask.
        softmax_scale: scale of QK^T; default headdim**-0.5.
        return_lse: also return the log-sum-exp (natural log), (batch, nheads, seqlen_q).

    Returns:
        O in float64, (batch, seqlen_q, nheads, headdim); with ``return_lse``, (O, LSE).
        NaN or Inf in the inputs propagate to the affected rows, as in any attention.
    """
    shape = check_qkv(q, k, v, FLOAT_DTYPES + (torch.float8_e4m3fn,), same_dtype=False)
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    check_bool(causal, "causal")
    check_bool(return_lse, "return_lse")
    qd = q.to(torch.float64)
    kd = expand_kv_heads(k.to(torch.float64), shape.nheads)
    vd = expand_kv_heads(v.to(torch.float64), shape.nheads)
    out = torch.empty(shape.batch, shape.seqlen_q, shape.nheads, shape.headdim, dtype=torch.float64, device=q.device)
    lse = torch.empty(shape.batch, shape.nheads, shape.seqlen_q, dtype=torch.float64, device=q.device)
    for start, end in _row_chunks(shape):
        s = torch.einsum("bqhd,bkhd->bhqk", qd[:, start:end], kd) * scale
        s = _masked_scores(s, shape, causal, start, end)
        row_max = s.amax(dim=-1, keepdim=True)
        # A row that sees no key has max -inf; subtract 0 instead so exp gives 0, not NaN.
        row_max = torch.where(row_max == float("-inf"), torch.zeros_like(row_max), row_max)
        p = torch.exp(s - row_max)
        denom = p.sum(dim=-1, keepdim=True)
        o = torch.einsum("bhqk,bkhd->bqhd", p, vd)
        safe = torch.where(denom == 0, torch.ones_like(denom), denom)
        out[:, start:end] = o / safe.permute(0, 2, 1, 3)
        lse[:, :, start:end] = (torch.log(denom) + row_max).squeeze(-1)
    return (out, lse) if return_lse else out


def _round(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Store in ``dtype`` and read back as float32 (what a kernel writing ``dtype`` does)."""
    return x.to(dtype).to(torch.float32)


def standard_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, dtype: torch.dtype,
                       causal: bool = False, softmax_scale: Optional[float] = None,
                       out_dtype: Optional[torch.dtype] = None, p_scale: float = 1.0) -> torch.Tensor:
    """Unfused attention in ``dtype``: the baseline fused kernels are measured against.

    16-bit and fp32: matmul operands in ``dtype``, fp32 accumulation, S, P and O each stored
    in ``dtype``; softmax computed in fp32 (as PyTorch does for half tensors).

    ``torch.float8_e4m3fn`` (the FA3 paper's FP8 baseline): Q, K and V quantized with one
    scale per tensor (amax / 448); S = QK^T accumulated in fp32 and kept in fp16; softmax in
    fp32, kept in fp16; P cast to e4m3 as e4m3(P * p_scale) / p_scale; O = PV accumulated in
    fp32, rescaled, stored in ``out_dtype`` (default bf16). ``p_scale`` 1 (the default) casts P
    as it is, the paper's baseline (it reproduces the paper's 2.4e-2 on its outlier inputs);
    448 (P's bound is 1) is per-tensor scaling of P too, a stronger baseline: P's small values
    stay above e4m3's subnormals.

    Computed on the inputs' device in float32 arithmetic on values rounded to ``dtype``, so
    the result is the same on CPU and GPU up to summation order.
    """
    shape = check_qkv(q, k, v, FLOAT_DTYPES, same_dtype=False)
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    check_bool(causal, "causal")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    if dtype not in STANDARD_DTYPES:
        raise ValueError(f"dtype {dtype_name(dtype)} is not supported; allowed: {dtypes_text(STANDARD_DTYPES)}")
    fp8 = dtype == torch.float8_e4m3fn
    if isinstance(p_scale, bool) or not (isinstance(p_scale, (int, float)) and math.isfinite(p_scale) and p_scale > 0):
        raise ValueError(f"p_scale must be a finite number > 0, got {p_scale!r}")
    if p_scale != 1.0 and not fp8:
        raise ValueError(f"p_scale applies to dtype torch.float8_e4m3fn only, got dtype {dtype_name(dtype)}")
    if out_dtype is None:
        out_dtype = torch.bfloat16 if fp8 else dtype
    if out_dtype not in FLOAT_DTYPES:
        raise ValueError(f"out_dtype {dtype_name(out_dtype)} is not supported; allowed: {dtypes_text(FLOAT_DTYPES)}")

    if fp8:
        # Imported here because fa3.quant imports this module (emulation uses its masks).
        from .quant import dequantize_e4m3, quantize_e4m3
        qf, kf, vf = (dequantize_e4m3(quantize_e4m3(x)) for x in (q, k, v))
        stored = torch.float16
    else:
        qf, kf, vf = (_round(x, dtype) for x in (q, k, v))
        stored = dtype
    kf = expand_kv_heads(kf, shape.nheads)
    vf = expand_kv_heads(vf, shape.nheads)
    out = torch.empty(shape.batch, shape.seqlen_q, shape.nheads, shape.headdim, dtype=torch.float32, device=q.device)
    for start, end in _row_chunks(shape):
        s = _round(torch.einsum("bqhd,bkhd->bhqk", qf[:, start:end], kf), stored)
        s = _masked_scores(s * scale, shape, causal, start, end)
        p = torch.softmax(s, dim=-1)
        # Rows that see no key: softmax gives NaN there, attention defines them as 0. Only
        # those rows are zeroed, so a NaN coming from the inputs still propagates.
        p[:, :, : _leading_empty_rows(shape, causal, start, end)] = 0.0
        p = _round(p, stored)
        if fp8:
            p = _round(p * p_scale, torch.float8_e4m3fn) / p_scale
        o = torch.einsum("bhqk,bkhd->bqhd", p, vf)
        out[:, start:end] = o if fp8 else _round(o, dtype)
    return out.to(out_dtype)

