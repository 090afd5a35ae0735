"""fa3.flash_attn_func (fp16/bf16 forward kernel) against the FP64 reference, on a Hopper GPU.

Tolerance rule (DESIGN.md): error of fa3 vs FP64 <= 2 x error of standard (unfused) attention
in the same precision vs FP64, + a small atol; for the max abs error and for the RMSE.
"""
import math

import pytest
import torch

import fa3
from fa3.reference import attention_ref, standard_attention

pytestmark = pytest.mark.gpu

DTYPES = [torch.float16, torch.bfloat16]
HDIMS = [64, 128, 256]


def poisoned_call(fn, *shapes_dtypes):
    """Run fn with the CUDA caching allocator's next blocks of these sizes filled with NaN, and
    check the outputs really landed in them: every element the kernel skips stays NaN."""
    torch.cuda.synchronize()
    blocks = [torch.full(shape, float("nan"), dtype=dtype, device="cuda") for shape, dtype in shapes_dtypes]
    ptrs = [b.data_ptr() for b in blocks]
    del blocks
    outs = fn()
    got = [o.data_ptr() for o in outs]
    assert sorted(got) == sorted(ptrs), "the allocator did not reuse the poisoned blocks"
    return outs


def run_and_check(q, k, v, causal, softmax_scale=None, atol=1e-5):
    b, sq, h, d = q.shape
    q0, k0, v0 = q.clone(), k.clone(), v.clone()
    out, lse = poisoned_call(lambda: fa3.flash_attn_func(q, k, v, softmax_scale=softmax_scale, causal=causal,
                                                         return_lse=True),
                             ((b, sq, h, d), q.dtype), ((b, h, sq), torch.float32))
    assert torch.equal(q, q0) and torch.equal(k, k0) and torch.equal(v, v0), "inputs were modified"
    assert out.shape == q.shape and out.dtype == q.dtype and lse.shape == (b, h, sq) and lse.dtype == torch.float32
    ref, ref_lse = attention_ref(q, k, v, causal=causal, softmax_scale=softmax_scale, return_lse=True)
    std = standard_attention(q, k, v, dtype=q.dtype, causal=causal, softmax_scale=softmax_scale)
    assert not torch.isnan(out).any(), "NaN in the output (an unwritten element, or a kernel bug)"
    err, std_err = (out.double() - ref).abs(), (std.double() - ref).abs()
    assert err.max() <= 2 * std_err.max() + atol, f"max err {err.max():.3e} vs standard {std_err.max():.3e}"
    assert err.pow(2).mean().sqrt() <= 2 * std_err.pow(2).mean().sqrt() + atol
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite), "LSE is -inf exactly where a row sees no key"
    torch.testing.assert_close(lse[finite].double(), ref_lse[finite], rtol=0, atol=1e-4)
    assert torch.all(out[~finite.transpose(1, 2)] == 0), "rows that see no key must be zeros"
    return out, lse


def randn(*shape, dtype):
    return torch.randn(*shape, device="cuda", dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlen_q,seqlen_k", [(1, 1), (17, 17), (1000, 1000), (113, 203), (203, 113),
                                                (2048, 511), (511, 2048), (129, 81), (81, 129),
                                                (177, 193), (193, 177)])  # just past each tile
def test_matches_reference(dtype, hdim, causal, seqlen_q, seqlen_k):
    q = randn(2, seqlen_q, 4, hdim, dtype=dtype)
    k, v = randn(2, seqlen_k, 4, hdim, dtype=dtype), randn(2, seqlen_k, 4, hdim, dtype=dtype)
    run_and_check(q, k, v, causal)


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
def test_long_sequence_tail(hdim, causal):
    q, k, v = (randn(1, 4097, 2, hdim, dtype=torch.bfloat16) for _ in range(3))
    run_and_check(q, k, v, causal)


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("seqlen_k", [177, 353])  # 2 and 3 key tiles at hdim 128 (an odd count)
def test_many_tiles_per_cta(hdim, seqlen_k):
    """Several times more query tiles than SMs: the persistent kernels (non-causal, hdim <= 128)
    run many tiles per CTA, carrying pipeline stages and buffers from one tile to the next; with
    an odd number of key tiles the stage of a tile's last K/V alternates from tile to tile."""
    q = randn(4, 1000, 16, hdim, dtype=torch.bfloat16)
    k, v = randn(4, seqlen_k, 16, hdim, dtype=torch.bfloat16), randn(4, seqlen_k, 16, hdim, dtype=torch.bfloat16)
    run_and_check(q, k, v, causal=False)


def split_tiles_used(q, k) -> bool:
    """Whether the kernel for these shapes cuts tiles between CTAs (it asks for a workspace)."""
    from fa3._ext import extension
    (b, sq, h, d), (sk, hkv) = q.shape, k.shape[1:3]
    return extension().fwd_workspace_bytes(b, sq, sk, h, hkv, d, False, 1, 0, True) > 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hdim", [64, 128])  # the persistent kernels
@pytest.mark.parametrize("seqlen_k", [1000, 1409])  # a whole last key tile, a 1-key last tile (masked)
def test_last_wave_split_tiles(dtype, hdim, seqlen_k):
    """More tiles than SMs and not a whole number of waves: the persistent kernel cuts its last
    tiles between two CTAs and merges their softmax states (hopper/stream_k_plan.h). Checked
    against FP64, against the kernel without the cut, and for bitwise repeatability (which CTA
    finishes its piece first varies from run to run; the merge must not depend on it)."""
    q = randn(3, 777, 16, hdim, dtype=dtype)  # 336 (hdim 128) / 240 (hdim 64) query tiles
    k, v = randn(3, seqlen_k, 4, hdim, dtype=dtype), randn(3, seqlen_k, 4, hdim, dtype=dtype)
    assert split_tiles_used(q, k), "this case must exercise the split tiles"
    out, lse = run_and_check(q, k, v, causal=False)
    whole, whole_lse = torch.ops.fa3.fwd(q, k, v, hdim ** -0.5, False, 0, False)
    assert (out.float() - whole.float()).abs().max() <= 2 * torch.finfo(dtype).eps * whole.float().abs().max()
    torch.testing.assert_close(lse, whole_lse, rtol=0, atol=1e-5)
    for _ in range(3):
        assert torch.equal(out, fa3.flash_attn_func(q, k, v)), "results move between runs: a race"


@pytest.mark.parametrize("nheads,nheads_kv", [(16, 2), (8, 1)])  # GQA 8:1, MQA
@pytest.mark.parametrize("causal", [False, True])
def test_gqa_and_mqa(nheads, nheads_kv, causal):
    q = randn(3, 300, nheads, 128, dtype=torch.float16)
    k, v = randn(3, 333, nheads_kv, 128, dtype=torch.float16), randn(3, 333, nheads_kv, 128, dtype=torch.float16)
    run_and_check(q, k, v, causal)


@pytest.mark.parametrize("hdim", HDIMS)
def test_strided_inputs(hdim):
    """Packed qkv (B, S, 3, H, D) slices and a (B, H, S, D) transpose: head dim contiguous only."""
    qkv = randn(2, 257, 3, 4, hdim, dtype=torch.bfloat16)
    q, k, v = qkv.unbind(2)
    assert not q.is_contiguous()
    run_and_check(q, k, v, causal=True)
    kt = randn(2, 4, 190, hdim, dtype=torch.bfloat16).transpose(1, 2)
    vt = randn(2, 4, 190, hdim, dtype=torch.bfloat16).transpose(1, 2)
    run_and_check(q, kt, vt, causal=False)


def test_softmax_scale_and_batch():
    q, k, v = (randn(5, 150, 3, 64, dtype=torch.float16) for _ in range(3))
    run_and_check(q, k, v, causal=False, softmax_scale=0.3)
    run_and_check(q, k, v, causal=True, softmax_scale=1.7)


def test_causal_rows_without_keys_are_zero():
    q, k, v = randn(1, 300, 2, 128, dtype=torch.float16), randn(1, 50, 2, 128, dtype=torch.float16), \
        randn(1, 50, 2, 128, dtype=torch.float16)
    out, lse = run_and_check(q, k, v, causal=True)
    assert torch.all(out[:, :250] == 0) and torch.all(lse[:, :, :250] == -math.inf)


def test_nan_propagates():
    q, k, v = (randn(1, 300, 2, 128, dtype=torch.bfloat16) for _ in range(3))
    q[0, 7, 1, 5] = float("nan")
    out = fa3.flash_attn_func(q, k, v)
    assert torch.isnan(out[0, 7, 1]).all()
    assert not torch.isnan(out[0, :, 0]).any() and not torch.isnan(out[0, 8:, 1]).any()
    v[0, 200, 0, 0] = float("nan")
    assert torch.isnan(fa3.flash_attn_func(q, k, v)[0, :, 0, 0]).all()


def test_repeatable_bitwise():
    q, k, v = (randn(2, 1000, 4, 128, dtype=torch.bfloat16) for _ in range(3))
    a = fa3.flash_attn_func(q, k, v, causal=True)
    for _ in range(3):
        assert torch.equal(a, fa3.flash_attn_func(q, k, v, causal=True)), "results move between runs: a race"


def test_misaligned_pointer_is_rejected():
    base = randn(1, 64 * 128 + 8, dtype=torch.float16).view(-1)
    q = base[1:1 + 64 * 128].view(1, 64, 1, 128)  # 2-byte offset
    k = randn(1, 64, 1, 128, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"^q must start at a 16-byte aligned address"):
        fa3.flash_attn_func(q, k, k)
    torch.testing.assert_close(fa3.flash_attn_func(k, k, k), fa3.flash_attn_func(k, k, k))  # still works


def test_rejected_on_cpu_tensor_keeps_process_working():
    x = torch.zeros(1, 8, 1, 64, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"^q, k and v must be CUDA tensors on a Hopper GPU, got tensors on cpu$"):
        fa3.flash_attn_func(x, x, x)
    y = randn(1, 8, 1, 64, dtype=torch.float16)
    assert torch.isfinite(fa3.flash_attn_func(y, y, y)).all()


@pytest.mark.parametrize("schedule", [1, 2, 3, 4])  # pingpong+overlap (default at hdim 128), overlap, pingpong, serial
@pytest.mark.parametrize("batch,nheads", [(2, 4), (3, 16)])  # one wave; 336 tiles, the last ones split
def test_ablation_schedules_are_correct(schedule, batch, nheads):
    q, k, v = (randn(batch, 1000, nheads, 128, dtype=torch.bfloat16) for _ in range(3))
    out, lse = torch.ops.fa3.fwd(q, k, v, 128 ** -0.5, False, schedule)
    ref, ref_lse = attention_ref(q, k, v, return_lse=True)
    std = standard_attention(q, k, v, dtype=torch.bfloat16)
    assert (out.double() - ref).abs().max() <= 2 * (std.double() - ref).abs().max() + 1e-5
    torch.testing.assert_close(lse.double(), ref_lse, rtol=0, atol=1e-4)


def test_ablation_schedule_outside_its_build_is_rejected():
    q = randn(1, 64, 1, 64, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"^schedule 1 \(ablation\) is built for bf16, headdim 128, non-causal only$"):
        torch.ops.fa3.fwd(q, q, q, 0.125, False, 1)
