"""The FP8 attention algorithm fa3's FP8 kernel runs, emulated in PyTorch on any device.

It lets each technique's numerical effect be studied without a GPU, and is the yardstick the
FP8 kernel is tested against (same algorithm, so same error up to summation order).

Steps (for q, k, v in the flash_attn layout, any float dtype):
1. Incoherent processing (``hadamard=True``): Q and K rotated by M = H diag(s)/sqrt(d)
   along the head dim (see ``hadamard.py``); V is not rotated, so O needs no inverse.
2. Quantization to e4m3: per block (Q per ``block_m`` query rows, K and V per ``block_n``
   key rows, each per head) with ``block_quant=True``, else one scale per tensor. With
   ``q_residual=True`` Q takes a second e4m3 term in the same units (``e4m3_residual``), and the
   S GEMM multiplies their sum, exact in fp32, by K8^T.
3. Online softmax over key tiles of ``block_n`` rows, as the kernel's mainloop, visiting the
   tiles from the last to the first: S = (Q8 K8^T) * (q_scale * k_scale * softmax_scale *
   log2 e), fp32 accumulation; P = exp2(S - m) in fp32 against a reference row max m; the row
   sum l adds these fp32 P; P is stored as e4m3(P * 2^8) (the +8 exponent shift uses e4m3's
   range below 1); O += P8 V8 in units of a V scale u (the kernel's PV GEMM takes V8 unscaled).
   Lazy rescaling (the kernel skips O's rescale when it would be by 1): the rows of a warp (16
   consecutive query rows, ``WARP_ROWS``) keep m and u unless one of them sees a tile max above
   its m by more than ``MAX_SLACK`` (log2 units) or the tile's V scale is not within
   [1/2, 2^0.3] (``UNIT_FOLD_MAX``) of u; then each of the 16 rows moves m to its running max, u to the
   tile's V scale, and rescales O and l (O by exp2(m_old - m) u_old / u). Otherwise the ratio r of
   the tile's V scale to u is folded into P (P = exp2(S - m + log2 r), so P8 V8 is in units of u),
   and l adds sum(P) / r. P stays <= 2^(8 + 0.5 + 0.3) < 448, e4m3's largest value. An all-zero V
   block (scale FLT_MIN) keeps u.
4. O u / l, written in ``out_dtype`` (bf16 by default); LSE = (m + log2 l) * ln 2.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch

from .._validation import check_bool, check_positive_int, check_qkv, check_softmax_scale, dtypes_text
from ..reference import causal_mask, expand_kv_heads
from .e4m3 import cast_e4m3, e4m3_residual, expand_block_scale, quantize_e4m3
from .hadamard import hadamard_rotate

LOG2E = math.log2(math.e)
P_SHIFT = 8.0  # P is stored as e4m3(P * 2**P_SHIFT); exact power of two, undone on O
WARP_ROWS = 16  # query rows of one warp of the kernel, which decide a rescale together
MAX_SLACK = 0.5  # how far (log2 units) a row's max may rise above its reference without a rescale
UNIT_FOLD_MAX = 1.2311444  # V scale ratios in [1/2, 2^0.3] fold into P (2^0.3 rounded down, as in the kernel)
FLT_MIN = torch.finfo(torch.float32).tiny  # the descale of an all-zero block (e4m3.py)
INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def fp8_attention_emulated(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                           softmax_scale: Optional[float] = None, block_quant: bool = True,
                           hadamard: bool = True, seed: int = 0, block_m: int = 128, block_n: int = 128,
                           out_dtype: torch.dtype = torch.bfloat16, return_lse: bool = False,
                           q_residual: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """FP8 attention as fa3's FP8 kernel computes it (see the module docstring).

    Args:
        q: (batch, seqlen_q, nheads, headdim); k, v: (batch, seqlen_k, nheads_kv, headdim).
        causal: bottom-right aligned causal mask.
        softmax_scale: default headdim**-0.5.
        block_quant: one scale per block (Q: block_m rows, K/V: block_n rows, per head);
            False gives one scale per tensor.
        hadamard: rotate Q and K by the seeded random Hadamard matrix before quantizing
            (needs a power-of-two head dim).
        seed: seed of the Hadamard signs.
        block_m, block_n: quantization blocks; block_n is also the online-softmax key tile.
        out_dtype: dtype of O.
        return_lse: also return the LSE (float32, natural log, (batch, nheads, seqlen_q)).
        q_residual: Q as two e4m3 terms, q + e4m3_residual (fa3.fp8.quantize_fp8's q_residual).
    """
    shape = check_qkv(q, k, v, INPUT_DTYPES, same_dtype=False)
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    for name, flag in (("causal", causal), ("block_quant", block_quant), ("hadamard", hadamard),
                       ("return_lse", return_lse), ("q_residual", q_residual)):
        check_bool(flag, name)
    check_positive_int(block_m, "block_m")
    check_positive_int(block_n, "block_n")
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {dtypes_text(OUT_DTYPES)}, got {out_dtype}")

    if hadamard:
        q, k = hadamard_rotate(q, seed), hadamard_rotate(k, seed)
    qq = quantize_e4m3(q, block_m if block_quant else None)
    kq = quantize_e4m3(k, block_n if block_quant else None)
    vq = quantize_e4m3(v, block_n if block_quant else None)
    # fp8 values are exact in fp32 and their products too; only the sums round. Two e4m3 terms
    # of one scale add exactly in fp32 (their exponents are at most ~12 apart).
    q8 = qq.data.to(torch.float32)
    if q_residual:
        q8 = q8 + e4m3_residual(q, qq).to(torch.float32)
    k8 = expand_kv_heads(kq.data.to(torch.float32), shape.nheads)
    v8 = expand_kv_heads(vq.data.to(torch.float32), shape.nheads)
    q_descale = expand_block_scale(qq.scale, shape.seqlen_q, qq.block_size)  # () or (B, Sq, H, 1)
    k_descale = expand_kv_heads(expand_block_scale(kq.scale, shape.seqlen_k, kq.block_size), shape.nheads) \
        if block_quant else kq.scale
    v_descale = expand_kv_heads(expand_block_scale(vq.scale, shape.seqlen_k, vq.block_size), shape.nheads) \
        if block_quant else vq.scale

    b, sq, h, d = shape.batch, shape.seqlen_q, shape.nheads, shape.headdim
    device = q.device
    # Rows of Q carry their own scale: fold q_scale * softmax_scale * log2(e) into Q's side.
    row_scale = (q_descale * (scale * LOG2E)).expand(b, sq, h, 1).permute(0, 2, 1, 3)  # (B, H, Sq, 1)
    q8h = q8.permute(0, 2, 1, 3)  # (B, H, Sq, D)
    # Per-row state; the rescale decisions are per group of WARP_ROWS rows (padded with rows
    # that never ask for one).
    sq_pad = -(-sq // WARP_ROWS) * WARP_ROWS
    m = torch.full((b, h, sq, 1), float("-inf"), device=device)
    u = torch.ones((b, h, sq, 1), device=device)
    l = torch.zeros((b, h, sq, 1), device=device)
    o = torch.zeros((b, h, sq, d), device=device)

    def per_warp(flags: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(flags, (0, 0, 0, sq_pad - sq))
        return padded.view(b, h, sq_pad // WARP_ROWS, WARP_ROWS).any(-1, keepdim=True) \
            .expand(b, h, sq_pad // WARP_ROWS, WARP_ROWS).reshape(b, h, sq_pad, 1)[:, :, :sq]

    for n0 in reversed(range(0, shape.seqlen_k, block_n)):
        n1 = min(shape.seqlen_k, n0 + block_n)
        k_tile = k8[:, n0:n1].permute(0, 2, 3, 1)  # (B, H, D, n)
        s = torch.matmul(q8h, k_tile) * row_scale
        if block_quant:
            s = s * k_descale[:, n0:n1].permute(0, 2, 3, 1)  # per key row, (B, H, 1, n)
        else:
            s = s * kq.scale
        if causal:
            keep = causal_mask(sq, shape.seqlen_k, device=device)[:, n0:n1]
            s = s.masked_fill(~keep, float("-inf"))
        # The tile's V scale, one per (batch, head) (its block_n rows share it), as (B, H, 1, 1).
        v_scale = (v_descale[:, n0:n0 + 1].permute(0, 2, 1, 3) if block_quant else vq.scale) \
            * torch.ones((b, h, 1, 1), device=device)
        zero_block = v_scale == FLT_MIN
        ratio = torch.where(zero_block, torch.ones_like(v_scale), v_scale / u)
        fold = (ratio >= 0.5) & (ratio <= UNIT_FOLD_MAX)  # False for NaN
        m_tile = s.amax(dim=-1, keepdim=True)
        rescale = per_warp((m_tile > m + MAX_SLACK) | ~fold)
        m_new = torch.where(rescale, torch.maximum(m, m_tile), m)
        # A row with no visible key so far keeps m = -inf: use 0 so exp2 gives 0, not NaN.
        m_safe = torch.where(m_new == float("-inf"), torch.zeros_like(m_new), m_new)
        u_new = torch.where(rescale & ~zero_block, v_scale, u)
        alpha = torch.where(rescale, torch.exp2(m - m_safe), torch.ones_like(m))
        offset = torch.where(rescale | (ratio == 1), torch.zeros_like(ratio), torch.log2(ratio))
        p = torch.exp2(s - m_safe + offset)
        l = l * alpha + p.sum(dim=-1, keepdim=True) * torch.exp2(-offset)
        p8 = cast_e4m3(p * 2.0 ** P_SHIFT).to(torch.float32)
        v_tile = v8[:, n0:n1].permute(0, 2, 1, 3)  # (B, H, n, D)
        o = o * (alpha * (u / u_new)) + torch.matmul(p8, v_tile) * 2.0 ** -P_SHIFT
        m, u = m_new, u_new
    l_safe = torch.where(l == 0, torch.ones_like(l), l)
    out = (o * u / l_safe).permute(0, 2, 1, 3).to(out_dtype)
    if not return_lse:
        return out
    lse = ((m + torch.log2(l)) / LOG2E).squeeze(-1)
    return out, lse
