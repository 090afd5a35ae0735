"""FP8 attention (quantization kernel + FP8 forward kernel) on a Hopper GPU.

The yardstick is the emulated algorithm (fa3.quant.fp8_attention_emulated with the kernel's
tiles): same quantization, same online softmax, same P rounding, so the kernel's error vs FP64
may exceed the emulation's only by summation order and exp2 rounding (a P that lands on an e4m3
rounding tie can go either way). Rule: RMSE(kernel - FP64) <= 1.25 RMSE(emulated - FP64), and
the kernel is closer to the emulation than the emulation is to FP64.
"""
import pytest
import torch

import fa3
from fa3.quant import fp8_attention_emulated, from_v_layout
from fa3.reference import attention_ref

pytestmark = pytest.mark.gpu

HDIMS = [64, 128, 256]


def rmse(a, b):
    return (a.double() - b.double()).pow(2).mean().sqrt().item()


def outlier_inputs(b, sq, sk, h, hkv, d, dtype=torch.bfloat16, seed=0):
    """N(0,1) + N(0,100)*Bernoulli(0.001) (the FA3 paper's FP8 experiment), fresh per call."""
    g = torch.Generator(device="cuda").manual_seed(seed)

    def make(*shape):
        x = torch.randn(*shape, device="cuda", generator=g)
        spikes = torch.rand(*shape, device="cuda", generator=g) < 1e-3
        return (x + 10 * torch.randn(*shape, device="cuda", generator=g) * spikes).to(dtype)
    return make(b, sq, h, d), make(b, sk, hkv, d), make(b, sk, hkv, d)


def check_against_emulation(q, k, v, causal, block_quant=True, hadamard=True, out_dtype=None, q_residual=False):
    block_m, block_n = fa3.fp8_block_sizes(q.shape[-1])
    out, lse = fa3.fp8_attention(q, k, v, causal=causal, block_quant=block_quant, hadamard=hadamard,
                                 return_lse=True, out_dtype=out_dtype, q_residual=q_residual)
    assert out.dtype == (out_dtype or q.dtype) and out.shape == q.shape
    emu, emu_lse = fp8_attention_emulated(q, k, v, causal=causal, block_quant=block_quant, hadamard=hadamard,
                                          block_m=block_m, block_n=block_n, out_dtype=torch.float32,
                                          return_lse=True, q_residual=q_residual)
    ref, ref_lse = attention_ref(q, k, v, causal=causal, return_lse=True)
    assert not torch.isnan(out).any()
    err, emu_err = rmse(out, ref), rmse(emu, ref)
    assert err <= 1.25 * emu_err + 1e-4, f"kernel RMSE {err:.3e} vs emulated {emu_err:.3e}"
    assert rmse(out, emu) <= emu_err, f"kernel - emulated {rmse(out, emu):.3e} vs emulated error {emu_err:.3e}"
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite) and torch.equal(torch.isfinite(emu_lse), finite)
    # The tensor cores accumulate e4m3 products with fewer bits than fp32 (about 14 on Hopper, by
    # the DeepSeek-V3 report): scores, and with them the LSE, carry more error than the
    # emulation's fp32 sums, so the LSE is held to 1.25x the emulation's error vs FP64, as O is.
    lse_err, emu_lse_err = rmse(lse[finite], ref_lse[finite]), rmse(emu_lse[finite], ref_lse[finite])
    assert lse_err <= 1.25 * emu_lse_err + 1e-3, f"LSE RMSE {lse_err:.3e} vs emulated {emu_lse_err:.3e}"
    return out


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seqlen_q,seqlen_k", [(1, 1), (17, 17), (300, 300), (113, 1000), (1000, 113),
                                                (161, 161), (225, 225), (129, 257)])  # just past each tile
def test_matches_emulation(hdim, causal, seqlen_q, seqlen_k):
    q, k, v = outlier_inputs(2, seqlen_q, seqlen_k, 4, 2, hdim, seed=seqlen_q * 7 + seqlen_k)
    check_against_emulation(q, k, v, causal)


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("negative_every", [1, 3])
def test_rows_whose_scores_are_all_negative(hdim, causal, negative_every):
    """The kernel takes row maxima on the scores' bits as integers (softmax.hpp, row_maxima), which
    is the float maximum only where a thread's part of the row holds a score >= 0; warps with a row
    of negative scores only take the FMNMX path. Q and K >= 0, then every (or every third) query
    row negated: those rows' scores are all negative (the Hadamard rotation keeps Q K^T)."""
    q, k, v = outlier_inputs(1, 700, 700, 2, 2, hdim, seed=hdim + negative_every)
    rows = torch.arange(q.shape[1], device=q.device)
    sign = torch.where(rows % negative_every == 0, -1.0, 1.0).to(q.dtype)[None, :, None, None]
    check_against_emulation(q.abs() * sign, k.abs(), v, causal)


@pytest.mark.parametrize("hdim", HDIMS)
@pytest.mark.parametrize("block_quant,hadamard", [(False, False), (True, False), (False, True)])
def test_each_technique_alone(hdim, block_quant, hadamard):
    q, k, v = outlier_inputs(1, 700, 700, 2, 2, hdim, seed=hdim)
    check_against_emulation(q, k, v, False, block_quant=block_quant, hadamard=hadamard)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block_quant,hadamard", [(False, False), (True, True)])
def test_head_dim_64_with_and_without_q_residual(block_quant, hadamard, causal):
    """Both kernels of head dim 64 (one term of Q, two) against their emulations; the two-term one is
    the more accurate with block quantization and Hadamard (the emulation: 1.25x at 1k tokens)."""
    q, k, v = outlier_inputs(1, 1000, 1000, 4, 2, 64, seed=64 + causal)
    ref = attention_ref(q, k, v, causal=causal)
    one = check_against_emulation(q, k, v, causal, block_quant, hadamard, q_residual=False)
    two = check_against_emulation(q, k, v, causal, block_quant, hadamard, q_residual=True)
    if block_quant and hadamard:
        assert rmse(two, ref) < 0.9 * rmse(one, ref)
    assert torch.equal(fa3.fp8_attention(q, k, v, causal=causal, block_quant=block_quant, hadamard=hadamard),
                       one)  # the default: one term


def test_q_residual_errors_name_the_problem():
    q, k, v = outlier_inputs(1, 300, 300, 2, 2, 64, seed=3)
    assert fa3.quantize_fp8(q, k, v).q_residual is None  # off by default
    qkv = fa3.quantize_fp8(q, k, v, q_residual=True)
    assert qkv.q_residual is not None and qkv.q_residual.shape == qkv.q.shape
    with pytest.raises(ValueError) as info:
        fa3.flash_attn_fp8(qkv._replace(q_residual=qkv.q_residual[:, :200]))
    assert str(info.value) == ("qkv.q_residual must have q's shape (1, 300, 2, 64), strides (38400, 128, 64, 1) "
                               "and device cuda:0, got (1, 200, 2, 64), (38400, 128, 64, 1) and cuda:0")
    q1, k1, v1 = outlier_inputs(1, 300, 300, 2, 2, 128, seed=3)
    qkv128 = fa3.quantize_fp8(q1, k1, v1)
    with pytest.raises(ValueError) as info:
        fa3.flash_attn_fp8(qkv128._replace(q_residual=qkv128.q))
    assert str(info.value) == "qkv.q_residual is supported at head dim 64 only, got head dim 128"


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16])
def test_fp16_inputs_and_out_dtypes(out_dtype):
    q, k, v = outlier_inputs(1, 513, 513, 2, 1, 128, dtype=torch.float16, seed=5)
    check_against_emulation(q, k, v, True, out_dtype=out_dtype)


@pytest.mark.parametrize("hdim", HDIMS)
def test_many_tiles_and_long_rows(hdim):
    """More query tiles than SMs (the persistent kernel's loop) and many key tiles per row."""
    q, k, v = outlier_inputs(2, 2049, 2049, 40, 8, hdim, seed=11)
    check_against_emulation(q, k, v, False)


@pytest.mark.parametrize("hdim", HDIMS)
def test_max_in_the_last_visited_key_tile(hdim):
    """Key tiles are visited last to first: a row's max that arrives in the last visited tile
    (keys 0..) rescales every P already taken in. With the +8 shift on P a stale max would
    saturate e4m3."""
    q, k, v = outlier_inputs(1, 256, 1024, 2, 2, hdim, seed=3)
    k[:, 0] = q[:, :1].expand(1, 1, 2, hdim) * 4  # key 0 dominates every row
    check_against_emulation(q, k, v, False)


@pytest.mark.parametrize("hdim", HDIMS)
def test_max_jump_beyond_fp32_exp2_range(hdim):
    """A max that arrives last and lies about 200 (log2 units) above every row's reference: the
    rescale factor of all P taken so far is 2^-200 (0 in fp32), and any P computed against the
    stale reference would overflow fp32's exp2 (2^128)."""
    q, k, v = outlier_inputs(1, 256, 1024, 2, 2, hdim, seed=6)
    k[:, 0] = q[:, :1].expand(1, 1, 2, hdim) * (200 / (hdim ** 0.5 * 1.4427))
    check_against_emulation(q, k, v, False)


@pytest.mark.parametrize("hdim", HDIMS)
def test_folded_v_scales_and_creeping_maxima(hdim):
    """Lazy rescaling (softmax.hpp): V blocks whose scales fold into P (factors 0.8, 1.15, 0.6 of
    the running unit) and blocks that change the unit (3, 0.3), with row maxima that creep up
    from tile to tile in the visiting order (last tile first), within the slack and beyond."""
    _, block_n = fa3.fp8_block_sizes(hdim)
    scales = torch.tensor([1.0, 0.8, 1.15, 0.6, 3.0, 0.3, 1.1, 0.9], device="cuda")
    n = len(scales)
    q, k, v = outlier_inputs(1, 300, n * block_n, 4, 2, hdim, seed=12)
    creep = torch.linspace(1.3, 1.0, n, device="cuda").repeat_interleave(block_n)[None, :, None, None]
    k = (k.float() * creep).to(k.dtype)
    v = (v.float() * scales.repeat_interleave(block_n)[None, :, None, None]).to(v.dtype)
    check_against_emulation(q, k, v, False)


def test_zero_v_block_keeps_o_finite():
    """An all-zero V block has the floor descale (FLT_MIN): it must not rescale O by 1/FLT_MIN."""
    hdim = 128
    _, block_n = fa3.fp8_block_sizes(hdim)
    q, k, v = outlier_inputs(1, 300, 4 * block_n, 2, 2, hdim, seed=9)
    v[:, block_n:2 * block_n] = 0
    v[:, 3 * block_n:] *= 1e-3  # and blocks whose scales differ by 1000x
    check_against_emulation(q, k, v, False)


def test_nan_propagates():
    hdim = 64
    _, block_n = fa3.fp8_block_sizes(hdim)
    q, k, v = outlier_inputs(1, 100, 3 * block_n, 2, 2, hdim, seed=4)
    v[0, block_n + 5, 1, 7] = float("nan")
    out = fa3.fp8_attention(q, k, v)
    assert torch.isnan(out[:, :, 1]).all(), "every row of head 1 sees the poisoned V block"
    assert not torch.isnan(out[:, :, 0]).any()


def test_flash_layout_inputs_and_descale_shapes_agree_bitwise():
    """flash_attn_func on e4m3 tensors (V in the flash layout) runs the same kernel as
    quantize_fp8's layout; per-head descales equal per-block ones repeated."""
    q, k, v = outlier_inputs(2, 333, 333, 4, 2, 128, seed=21)
    qkv = fa3.quantize_fp8(q, k, v, block_quant=False)
    direct = fa3.flash_attn_fp8(qkv, causal=True)
    v8 = from_v_layout(qkv.v_t, k.shape[1])
    via_func = fa3.flash_attn_func(qkv.q, qkv.k, v8, causal=True, q_descale=qkv.q_descale,
                                   k_descale=qkv.k_descale, v_descale=qkv.v_descale)
    assert torch.equal(direct, via_func)
    per_head = [d.reshape(1, 1).expand(2, n).contiguous() for d, n in
                ((qkv.q_descale, 4), (qkv.k_descale, 2), (qkv.v_descale, 2))]
    block_m, block_n = fa3.fp8_block_sizes(128)
    per_block = [d.reshape(1, 1, 1).expand(2, n, -(-s // blk)).contiguous() for d, n, s, blk in
                 ((qkv.q_descale, 4, 333, block_m), (qkv.k_descale, 2, 333, block_n), (qkv.v_descale, 2, 333, block_n))]
    for descales in (per_head, per_block):
        out = fa3.flash_attn_fp8(qkv._replace(q_descale=descales[0], k_descale=descales[1], v_descale=descales[2]),
                                 causal=True)
        assert torch.equal(out, direct)


def test_descale_shape_error_names_the_tile():
    q, k, v = outlier_inputs(1, 300, 300, 2, 2, 128, seed=1)
    qkv = fa3.quantize_fp8(q, k, v)
    block_m, block_n = fa3.fp8_block_sizes(128)
    with pytest.raises(ValueError) as info:
        fa3.flash_attn_fp8(qkv._replace(k_descale=torch.ones(1, 2, 7, device="cuda")))
    nblocks = -(-300 // block_n)
    assert str(info.value) == (f"k_descale must have shape () or (1,) (per tensor), (1, 2) (per head) or "
                               f"(1, 2, {nblocks}) (one per {block_n} keys, the FP8 kernel's tile), got (1, 2, 7)")


def test_compiles_without_graph_breaks():
    q, k, v = outlier_inputs(1, 256, 256, 2, 2, 64, seed=2)
    eager = fa3.fp8_attention(q, k, v, causal=True)
    compiled = torch.compile(lambda q, k, v: fa3.fp8_attention(q, k, v, causal=True), fullgraph=True)
    assert torch.equal(compiled(q, k, v), eager)


@pytest.mark.parametrize("causal", [False, True])
def test_cudnn_fp8_peer_is_attention(causal):
    """cuDNN's FP8 attention (the benchmark's FP8 peer, when nvidia-cudnn-frontend is installed):
    per-tensor scales, P x448, e4m3 O. Its error vs FP64 is that of standard FP8 attention with
    the same scales plus O's e4m3 rounding: below 3x the standard FP8 (P x448) baseline's."""
    from fa3.cudnn_fp8 import cudnn_fp8_attention, cudnn_fp8_available
    from fa3.reference import standard_attention
    if not cudnn_fp8_available():
        pytest.skip("nvidia-cudnn-frontend is not installed")
    q, k, v = outlier_inputs(2, 512, 512, 4, 4, 128, seed=7)
    out = cudnn_fp8_attention(q, k, v, causal=causal)
    ref = attention_ref(q, k, v, causal=causal)
    std = standard_attention(q, k, v, dtype=torch.float8_e4m3fn, causal=causal, p_scale=448.0)
    assert out.dtype == q.dtype and out.shape == q.shape and not torch.isnan(out).any()
    assert rmse(out, ref) < 3 * rmse(std, ref), f"cuDNN FP8 RMSE {rmse(out, ref):.3e} vs standard {rmse(std, ref):.3e}"
