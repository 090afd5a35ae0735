"""The fp16/bf16 backward: the torch.library custom op ``fa3::bwd`` and the autograd formula of
``fa3::fwd`` (``register_autograd``), so ``fa3.flash_attn_func`` trains under eager autograd
and ``torch.compile``.

The forward saves only q, k, v, O and the LSE; the backward recomputes P from them (no
seqlen_q x seqlen_k tensor is stored). The LSE output is not differentiable: gradients flow
through O only.
"""
from typing import Tuple

import torch

from ._ext import require_hopper

BWD_HEAD_DIMS = (64, 128)
_DTYPE_CODES = {torch.float16: 0, torch.bfloat16: 1}  # fa3::Dtype in hopper/flash_params.h


def _strides(x: torch.Tensor) -> Tuple[int, int, int]:
    return x.stride(0), x.stride(1), x.stride(2)


def _kernel_ready(x: torch.Tensor, name: str) -> torch.Tensor:
    """x itself when TMA can read it (the forward's layout and alignment rules), else a copy."""
    from .flash_attn import check_alignment, check_layout  # flash_attn imports this module
    try:
        check_layout(x, name)
        check_alignment(x, name)
    except ValueError:
        return x.contiguous()
    return x


@torch.library.custom_op("fa3::bwd", mutates_args=(), device_types="cuda")
def _bwd(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
         lse: torch.Tensor, softmax_scale: float, causal: bool, deterministic: bool = False
         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv of attention from the forward's inputs, output O and LSE, and dO.
    deterministic: add the key tiles' dQ contributions in a fixed order (bitwise reproducible)."""
    ext = require_hopper(q.device, "the fa3 backward")
    dout, q, k, v, out = (_kernel_ready(x, name) for x, name in ((dout, "dout"), (q, "q"), (k, "k"), (v, "v"),
                                                                   (out, "out")))
    batch, seqlen_q, nheads, headdim = q.shape
    seqlen_k, nheads_kv = k.shape[1], k.shape[2]
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    with torch.cuda.device(q.device):
        num_sms = torch.cuda.get_device_properties(q.device).multi_processor_count
        nbytes = ext.bwd_workspace_bytes(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, causal, deterministic,
                                         num_sms)
        workspace = torch.empty(nbytes, dtype=torch.uint8, device=q.device)
        ext.bwd(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), dout.data_ptr(), lse.data_ptr(),
                dq.data_ptr(), dk.data_ptr(), dv.data_ptr(),
                _strides(q), _strides(k), _strides(v), _strides(out), _strides(dout),
                _strides(dq), _strides(dk), _strides(dv),
                batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim, softmax_scale, causal,
                _DTYPE_CODES[q.dtype], deterministic, workspace.data_ptr(), nbytes,
                torch.cuda.current_stream().cuda_stream)
    return dq, dk, dv


@_bwd.register_fake
def _bwd_fake(dout, q, k, v, out, lse, softmax_scale, causal, deterministic=False):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, softmax_scale, causal = inputs[:5]
    deterministic = inputs[7] if len(inputs) > 7 else False
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.softmax_scale = softmax_scale
    ctx.causal = causal
    ctx.deterministic = deterministic
    ctx.mark_non_differentiable(lse)


def _backward(ctx, dout: torch.Tensor, _dlse: torch.Tensor):
    q, k, v, out, lse = ctx.saved_tensors
    if q.shape[-1] not in BWD_HEAD_DIMS:
        raise ValueError(f"the fa3 backward supports head dims {', '.join(map(str, BWD_HEAD_DIMS))}; "
                         f"got head dim {q.shape[-1]} (its forward runs, its gradient does not yet)")
    dq, dk, dv = _bwd(dout, q, k, v, out, lse, ctx.softmax_scale, ctx.causal, ctx.deterministic)
    return dq, dk, dv, None, None, None, None, None


def attach_autograd(fwd_op) -> None:
    """Give the fa3::fwd op its gradient (called once by fa3.flash_attn)."""
    fwd_op.register_autograd(_backward, setup_context=_setup_context)


__all__ = ["BWD_HEAD_DIMS", "attach_autograd"]
