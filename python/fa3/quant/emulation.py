"""The FP8 attention algorithm fa3's FP8 kernel runs, emulated in PyTorch on any device.

It lets each technique's numerical effect be studied without a GPU, and is the yardstick the
FP8 kernel is tested against (same algorithm, so same error up to summation order).

Steps (for q, k, v in the flash_attn layout, any float dtype):
1. Incoherent processing (``hadamard=True``): Q and K rotated by M = H diag(s)/sqrt(d)
   along the head dim (see ``hadamard.py``); V is not rotated, so O needs no inverse.
2. Quantization to e4m3: per block (Q per ``block_m`` query rows, K and V per ``block_n``
   key rows, each per head) with ``block_quant=True``, else one scale per tensor.
3. Online softmax over key tiles of ``block_n`` rows, as the kernel's mainloop:
   S = (Q8 K8^T) * (q_scale * k_scale * softmax_scale * log2 e), fp32 accumulation;
   running row max m; P = exp2(S - m) in fp32; the row sum l adds these fp32 P;
   P is stored as e4m3(P * 2^8) (the +8 exponent shift uses e4m3's range below 1);
   O = O * exp2(m_old - m) + (P8 V8) * v_scale / 2^8 (V's per-tile scale is folded into the
   same per-tile rescale of O that the online softmax already does).
4. O / l, written in ``out_dtype`` (bf16 by default); LSE = (m + log2 l) * ln 2.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch

from .._validation import check_bool, check_positive_int, check_qkv, check_softmax_scale, dtypes_text
from ..reference import causal_mask, expand_kv_heads
from .e4m3 import cast_e4m3, expand_block_scale, quantize_e4m3
from .hadamard import hadamard_rotate

LOG2E = math.log2(math.e)
P_SHIFT = 8.0  # P is stored as e4m3(P * 2**P_SHIFT); exact power of two, undone on O
INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def fp8_attention_emulated(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                           softmax_scale: Optional[float] = None, block_quant: bool = True,
                           hadamard: bool = True, seed: int = 0, block_m: int = 128, block_n: int = 128,
                           out_dtype: torch.dtype = torch.bfloat16, return_lse: bool = False
                           ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
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
    """
    shape = check_qkv(q, k, v, INPUT_DTYPES, same_dtype=False)
    scale = check_softmax_scale(softmax_scale, shape.headdim)
    for name, flag in (("causal", causal), ("block_quant", block_quant), ("hadamard", hadamard),
                       ("return_lse", return_lse)):
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
    # fp8 values are exact in fp32 and their products too; only the sums round.
    q8 = qq.data.to(torch.float32)
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
    m = torch.full((b, h, sq, 1), float("-inf"), device=device)
    l = torch.zeros((b, h, sq, 1), device=device)
    o = torch.zeros((b, h, sq, d), device=device)
    for n0 in range(0, shape.seqlen_k, block_n):
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
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        # A row with no visible key so far keeps m = -inf: use 0 so exp2 gives 0, not NaN.
        m_safe = torch.where(m_new == float("-inf"), torch.zeros_like(m_new), m_new)
        alpha = torch.exp2(m - m_safe)
        p = torch.exp2(s - m_safe)
        l = l * alpha + p.sum(dim=-1, keepdim=True)
        p8 = cast_e4m3(p * 2.0 ** P_SHIFT).to(torch.float32)
        v_tile = v8[:, n0:n1].permute(0, 2, 1, 3)  # (B, H, n, D)
        if block_quant:
            # Per-key-row V scales inside a tile are the tile's one scale (block_n rows).
            v_tile = v_tile * v_descale[:, n0:n1].permute(0, 2, 1, 3)
            pv = torch.matmul(p8, v_tile)
        else:
            pv = torch.matmul(p8, v_tile) * vq.scale
        o = o * alpha + pv * 2.0 ** -P_SHIFT
        m = m_new
    l_safe = torch.where(l == 0, torch.ones_like(l), l)
    out = (o / l_safe).permute(0, 2, 1, 3).to(out_dtype)
    if not return_lse:
        return out
    lse = ((m + torch.log2(l)) / LOG2E).squeeze(-1)
    return out, lse
