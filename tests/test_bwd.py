"""The fp16/bf16 backward (fa3.flash_attn_func under autograd) against FP64 gradients, on a
Hopper GPU.

Tolerance rule (DESIGN.md), per gradient: error of fa3 vs FP64 <= 2 x the error of standard
(unfused) attention differentiated in the same precision vs FP64, + a small atol; for the max
abs error and for the RMSE.
"""
import pytest
import torch

import fa3
from fa3._ext import extension
from fa3.reference import causal_mask, expand_kv_heads

pytestmark = pytest.mark.gpu

DTYPES = [torch.float16, torch.bfloat16]
HDIMS = [64, 128]


def attention_autograd(q, k, v, causal, dtype):
    """Attention in plain differentiable PyTorch: float64 throughout (dtype float64), or the
    standard unfused three steps in a 16-bit dtype (S and P stored in it, softmax in fp32).
    Rows that see no key give O = 0."""
    nheads, scale = q.shape[2], q.shape[-1] ** -0.5
    q, k, v = q.to(dtype), expand_kv_heads(k.to(dtype), nheads), expand_kv_heads(v.to(dtype), nheads)
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[1], k.shape[1], device=q.device), float("-inf"))
    p = torch.softmax(s.float(), dim=-1).nan_to_num(0.0).to(dtype)
    return torch.einsum("bhqk,bkhd->bqhd", p, v)


def grads(fn, q, k, v, dout):
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v)
    out.backward(dout.to(out.dtype))
    return out, q.grad, k.grad, v.grad


def check_grads(b, sq, sk, h, hkv, d, dtype, causal, atol=1e-4):
    q = torch.randn(b, sq, h, d, device="cuda", dtype=dtype)
    k, v = (torch.randn(b, sk, hkv, d, device="cuda", dtype=dtype) for _ in range(2))
    dout = torch.randn(b, sq, h, d, device="cuda", dtype=dtype)
    _, *got = grads(lambda q, k, v: fa3.flash_attn_func(q, k, v, causal=causal), q, k, v, dout)
    _, *ref = grads(lambda q, k, v: attention_autograd(q, k, v, causal, torch.float64), q, k, v, dout)
    _, *std = grads(lambda q, k, v: attention_autograd(q, k, v, causal, dtype), q, k, v, dout)
    for name, g, r, s in zip(("dq", "dk", "dv"), got, ref, std):
        assert g.dtype == dtype and g.shape == r.shape, f"{name}: {g.dtype} {tuple(g.shape)}"
        assert not torch.isnan(g).any(), f"NaN in {name}"
        err, std_err = (g.double() - r).abs(), (s.double() - r).abs()
        assert err.max() <= 2 * std_err.max() + atol, f"{name}: max err {err.max():.3e} vs standard {std_err.max():.3e}"
        rmse, std_rmse = err.pow(2).mean().sqrt(), std_err.pow(2).mean().sqrt()
        assert rmse <= 2 * std_rmse + atol, f"{name}: RMSE {rmse:.3e} vs standard {std_rmse:.3e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [
    (2, 256, 256, 4, 4),    # whole tiles, batch > 1
    (1, 113, 203, 2, 2),    # odd seqlens, seqlen_q < seqlen_k
    (1, 203, 113, 2, 2),    # seqlen_q > seqlen_k: causal rows that see no key
    (2, 300, 300, 6, 2),    # GQA: dK, dV summed over 3 query heads
    (1, 65, 129, 4, 1),     # MQA, one past a query tile (64) and a key tile (128)
])
def test_gradients_match_fp64(dtype, hdim, causal, shape):
    torch.manual_seed(hash((hdim, causal) + shape) % 2**31)
    b, sq, sk, h, hkv = shape
    check_grads(b, sq, sk, h, hkv, hdim, dtype, causal)


@pytest.mark.parametrize("hdim", HDIMS)
def test_long_sequence(hdim):
    """Many key tiles adding into one dQ (atomics under contention), causal."""
    torch.manual_seed(hdim)
    check_grads(1, 2048, 2048, 2, 1, hdim, torch.bfloat16, True)


@pytest.mark.parametrize("hdim", HDIMS)
def test_last_wave_with_key_tiles_cut_into_pieces(hdim):
    """165 key tiles, 33 past an H100's SMs, not causal: those are cut into pieces, one CTA each,
    whose dK and dV meet in the workspace (hopper/bwd_schedule.h); MQA, so pieces end inside a
    query head."""
    shape = (1, 1100, 21120, 3, 1)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    pieces, _ = extension().bwd_schedule(*shape, hdim, False, False, sms)
    assert pieces > 1, f"no key tile is cut on this GPU ({sms} SMs)"
    torch.manual_seed(hdim + 1)
    check_grads(*shape, hdim, torch.bfloat16, False)


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
def test_deterministic_is_bitwise_reproducible(hdim, causal):
    torch.manual_seed(7)
    q = torch.randn(2, 1000, 4, hdim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(2, 1000, 2, hdim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(2, 1000, 2, hdim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn(2, 1000, 4, hdim, device="cuda", dtype=torch.bfloat16)
    runs = []
    for _ in range(5):
        out = fa3.flash_attn_func(q, k, v, causal=causal, deterministic=True)
        runs.append(torch.autograd.grad(out, (q, k, v), dout))
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert torch.equal(a, b), "deterministic backward differs between runs"


def test_non_contiguous_dout_and_strided_inputs():
    """dO with a strided head dim (not TMA-readable as is) and q, k, v as slices of packed tensors."""
    torch.manual_seed(3)
    qkv = torch.randn(1, 200, 3, 4, 64, device="cuda", dtype=torch.float16)
    q, k, v = (qkv[:, :, i].detach().requires_grad_() for i in range(3))
    out = fa3.flash_attn_func(q, k, v, causal=True)
    dout = torch.randn(1, 200, 4, 128, device="cuda", dtype=torch.float16)[..., ::2]  # head dim stride 2
    got = torch.autograd.grad(out, (q, k, v), dout)
    _, *ref = grads(lambda q, k, v: attention_autograd(q, k, v, True, torch.float64), q, k, v, dout)
    for g, r in zip(got, ref):
        assert (g.double() - r).abs().max() < 2e-2


def test_backward_under_torch_compile():
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 128, 2, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(1, 128, 2, 64, device="cuda", dtype=torch.bfloat16)
    eager = torch.autograd.grad(fa3.flash_attn_func(q, k, v, causal=True), (q, k, v), dout)
    compiled_fn = torch.compile(lambda q, k, v: fa3.flash_attn_func(q, k, v, causal=True), fullgraph=True)
    compiled = torch.autograd.grad(compiled_fn(q, k, v), (q, k, v), dout)
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b)

