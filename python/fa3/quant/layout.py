"""The FP8 attention kernel's V layout: V^T with the keys relabeled in groups of 16.

e4m3 WGMMA reads both operands K-major, so the PV GEMM needs V with the keys contiguous:
(batch, nheads, headdim, seqlen_padded), seqlen_padded = ceil(seqlen / 16) * 16, padding keys
zero. Inside every group of 16 keys, position p holds key ``V_KEY_PERM[p]``. The reason: the
second GEMM takes P from registers in the 8-bit WGMMA A-operand layout, where a thread holds keys
4t..4t+3 of each 16-key half, while the fp32 accumulator of QK^T gives it keys 2t, 2t+1, 8+2t,
9+2t. With V's keys relabeled this way the accumulator registers already are the A operand.

The fused quantization kernel (fa3.quant.fused, ``v_layout=True``) writes this layout directly;
``to_v_layout`` makes it from a pre-quantized V and is what the tests compare against.
"""
from __future__ import annotations

import torch

from .._validation import check_positive_int, check_tensor

V_KEY_PERM = (0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15)
# Position of key k inside its group: the inverse of V_KEY_PERM.
_V_KEY_POSITION = tuple(V_KEY_PERM.index(k) for k in range(16))
KEY_GROUP = 16
LAYOUT_DTYPES = (torch.float8_e4m3fn, torch.float16, torch.bfloat16, torch.float32, torch.float64)


def padded_seqlen(seqlen: int) -> int:
    """The key count of the V layout: seqlen rounded up to a multiple of 16."""
    return -(-seqlen // KEY_GROUP) * KEY_GROUP


def _bytes_if_fp8(x: torch.Tensor) -> torch.Tensor:
    # Indexing and zero-filling are not implemented for float8 on every device: move its bytes.
    return x.view(torch.uint8) if x.dtype == torch.float8_e4m3fn else x


def to_v_layout(data: torch.Tensor) -> torch.Tensor:
    """(batch, seqlen, nheads, headdim) -> (batch, nheads, headdim, seqlen_padded), keys relabeled.

    Args:
        data: V, e4m3 (e.g. ``quantize_e4m3(v, n).data``) or floating point, any strides.

    Returns:
        A new contiguous tensor of data's dtype: out[b, h, d, 16 g + p] = data[b, 16 g + V_KEY_PERM[p], h, d],
        zero where that key is >= seqlen.
    """
    check_tensor(data, "data", LAYOUT_DTYPES, ndim=4)
    raw = _bytes_if_fp8(data)
    batch, seqlen, nheads, headdim = raw.shape
    seqlen_pad = padded_seqlen(seqlen)
    padded = raw.new_zeros((batch, seqlen_pad, nheads, headdim))
    padded[:, :seqlen] = raw
    perm = torch.tensor(V_KEY_PERM, device=raw.device)
    relabeled = padded.view(batch, seqlen_pad // KEY_GROUP, KEY_GROUP, nheads, headdim)[:, :, perm]
    out = relabeled.view(batch, seqlen_pad, nheads, headdim).permute(0, 2, 3, 1).contiguous()
    return out.view(data.dtype)


def from_v_layout(vt: torch.Tensor, seqlen: int) -> torch.Tensor:
    """The inverse of ``to_v_layout``: (batch, nheads, headdim, seqlen_padded) -> (batch, seqlen, nheads, headdim).

    Args:
        vt: V in the layout above, e4m3 or floating point.
        seqlen: the number of real keys; vt's last dim must be ``ceil(seqlen / 16) * 16``.

    Returns:
        A new contiguous tensor of vt's dtype without the padding keys.
    """
    check_tensor(vt, "vt", LAYOUT_DTYPES, ndim=4, layout="(batch, nheads, headdim, seqlen_padded)")
    seqlen = check_positive_int(seqlen, "seqlen")
    raw = _bytes_if_fp8(vt)
    batch, nheads, headdim, seqlen_pad = raw.shape
    if seqlen_pad != padded_seqlen(seqlen):
        raise ValueError(f"vt's last dim must be seqlen rounded up to a multiple of {KEY_GROUP} "
                         f"({padded_seqlen(seqlen)} for seqlen={seqlen}), got shape {tuple(vt.shape)}")
    position = torch.tensor(_V_KEY_POSITION, device=raw.device)
    keys = raw.reshape(batch, nheads, headdim, seqlen_pad // KEY_GROUP, KEY_GROUP)[..., position]
    out = keys.reshape(batch, nheads, headdim, seqlen_pad)[..., :seqlen].permute(0, 3, 1, 2).contiguous()
    return out.view(vt.dtype)


__all__ = ["V_KEY_PERM", "padded_seqlen", "to_v_layout", "from_v_layout"]
