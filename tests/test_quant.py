"""e4m3 quantization: rounding, saturation, per-tensor and per-block scales, non-finite inputs."""
import math

import pytest
import torch

from fa3.quant import E4M3_MAX, Fp8Tensor, block_amax, cast_e4m3, dequantize_e4m3, e4m3_residual, quantize_e4m3
from fa3.quant.e4m3 import expand_block_scale, reciprocal

TINY = torch.finfo(torch.float32).tiny


def test_cast_saturates_and_keeps_nan():
    x = torch.tensor([1000.0, -1000.0, 448.0, 464.0, float("nan"), float("inf"), -float("inf"), 0.0])
    y = cast_e4m3(x).float()
    assert y[:4].tolist() == [448.0, -448.0, 448.0, 448.0]
    assert torch.isnan(y[4:7]).all()
    assert y[7].item() == 0.0


def test_cast_rounds_to_nearest_even():
    # Between 1 and 2 the e4m3 step is 1/8: 1.0625 is a tie -> 1.0 (even), 1.1875 -> 1.25.
    y = cast_e4m3(torch.tensor([1.0625, 1.1875, 1.07, 2.0 ** -9, 2.0 ** -11])).float()
    assert y.tolist() == [1.0, 1.25, 1.125, 2.0 ** -9, 0.0]


@pytest.mark.parametrize("block_size", [None, 1, 16, 64, 100])
def test_round_trip_error_bound(block_size, gen):
    g = gen(f"rt{block_size}")
    x = torch.randn(2, 300, 3, 64, generator=g) * torch.exp(torch.randn(2, 300, 3, 1, generator=g))
    xq = quantize_e4m3(x, block_size)
    assert xq.data.dtype == torch.float8_e4m3fn and xq.data.shape == x.shape
    err = (dequantize_e4m3(xq) - x).abs()
    scale = dequantize_e4m3(Fp8Tensor(torch.ones_like(xq.data), xq.scale, block_size))
    # e4m3 keeps 3 mantissa bits: half an ulp is <= 2^-4 relative for normals and 2^-10 * scale
    # absolute in the subnormal range.
    bound = torch.maximum(x.abs() * 2.0 ** -4, scale * 2.0 ** -10) * (1 + 1e-6)
    assert (err <= bound).all()
    # amax of every block lands on the top of the e4m3 range.
    amax = block_amax(x, block_size)
    deq_amax = block_amax(dequantize_e4m3(xq), block_size)
    torch.testing.assert_close(deq_amax, amax, rtol=2.0 ** -4, atol=0)


def test_block_scales_shape_and_values(gen):
    x = torch.randn(2, 10, 3, 8, generator=gen("blocks"))
    xq = quantize_e4m3(x, block_size=4)
    assert xq.scale.shape == (2, 3, 3) and xq.scale.dtype == torch.float32
    for b in range(2):
        for h in range(3):
            for blk, (r0, r1) in enumerate([(0, 4), (4, 8), (8, 10)]):  # last block is shorter
                expected = x[b, r0:r1, h].abs().max().item() / E4M3_MAX
                assert xq.scale[b, h, blk].item() == pytest.approx(expected, rel=1e-7)
    per_tensor = quantize_e4m3(x)
    assert per_tensor.scale.shape == () and per_tensor.block_size is None
    assert per_tensor.scale.item() == pytest.approx(x.abs().max().item() / E4M3_MAX, rel=1e-7)


def test_block_quantization_helps_when_block_magnitudes_differ(gen):
    g = gen("mag")
    x = torch.randn(1, 256, 1, 64, generator=g)
    x[:, :64] *= 1e6  # one loud block: under one tensor scale the others underflow to zero
    per_tensor = (dequantize_e4m3(quantize_e4m3(x)) - x)[:, 64:].norm()
    per_block = (dequantize_e4m3(quantize_e4m3(x, 64)) - x)[:, 64:].norm()
    assert per_block < per_tensor / 10


def test_zero_block_gets_floor_scale_and_zero_data():
    x = torch.zeros(1, 8, 2, 4)
    x[:, :, 1] = 3.0
    xq = quantize_e4m3(x, block_size=8)
    assert xq.scale[0, 0, 0].item() == TINY
    assert torch.equal(dequantize_e4m3(xq)[:, :, 0], torch.zeros(1, 8, 4))
    assert torch.equal(dequantize_e4m3(xq)[:, :, 1], x[:, :, 1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_value_poisons_its_block_only(bad, gen):
    x = torch.randn(1, 12, 2, 8, generator=gen("poison"))
    x[0, 5, 1, 3] = bad
    xq = quantize_e4m3(x, block_size=4)
    deq = dequantize_e4m3(xq)
    assert not math.isfinite(xq.scale[0, 1, 1].item())
    assert torch.isnan(deq[0, 4:8, 1]).all()  # every element of the block that holds it
    clean = torch.ones_like(deq, dtype=torch.bool)
    clean[0, 4:8, 1] = False
    assert torch.isfinite(deq[clean]).all()
    assert torch.isfinite(xq.scale[0, 0]).all() and torch.isfinite(xq.scale[0, 1, [0, 2]]).all()
    assert torch.isnan(dequantize_e4m3(quantize_e4m3(x))).all()  # per tensor: the whole tensor


def test_quantize_validation():
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor, got list$"):
        quantize_e4m3([1.0])
    with pytest.raises(TypeError, match=r"^x has dtype torch.int32; allowed: torch.float16, torch.bfloat16, torch.float32, torch.float64$"):
        quantize_e4m3(torch.zeros(1, 2, 1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"^x must be a 4-D tensor \(batch, seqlen, nheads, headdim\), got shape \(2, 4\)$"):
        quantize_e4m3(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^block_size must be >= 1, got 0$"):
        quantize_e4m3(torch.zeros(1, 2, 1, 4), block_size=0)
    with pytest.raises(TypeError, match=r"^block_size must be an int, got float$"):
        quantize_e4m3(torch.zeros(1, 2, 1, 4), block_size=2.0)


def test_dequantize_validation():
    xq = quantize_e4m3(torch.ones(1, 10, 2, 4), block_size=4)
    with pytest.raises(TypeError, match=r"^xq must be an Fp8Tensor \(from quantize_e4m3\), got tuple$"):
        dequantize_e4m3(tuple(xq))
    bad = Fp8Tensor(xq.data, xq.scale[:, :, :2], 4)
    with pytest.raises(ValueError, match=r"^xq.scale must have shape \(1, 2, 3\) for data of shape \(1, 10, 2, 4\) and block_size=4, got \(1, 2, 2\)$"):
        dequantize_e4m3(bad)
    with pytest.raises(TypeError, match=r"^xq.data has dtype torch.float32; allowed: torch.float8_e4m3fn$"):
        dequantize_e4m3(Fp8Tensor(xq.data.float(), xq.scale, 4))


def test_block_below_the_floor_quantizes_to_zeros():
    # amax / 448 below the smallest normal float32: floor scale and zero data (not x / tiny).
    x = torch.zeros(1, 8, 2, 4)
    x[:, :4, 0] = 1e-37
    x[:, 4:, 0] = 1.0
    xq = quantize_e4m3(x, block_size=4)
    assert xq.scale[0, 0, 0].item() == TINY
    assert xq.scale[0, 0, 1] == torch.tensor(1.0) / E4M3_MAX
    assert torch.equal(xq.data[0, :4].float(), torch.zeros(4, 2, 4))
    assert torch.equal(dequantize_e4m3(xq)[:, 4:, 0], x[:, 4:, 0])


def test_reciprocal_is_correctly_rounded(gen):
    # Division rounded to double then to float is the correctly rounded float quotient (53 >= 2 * 24 + 2).
    s = torch.rand(100000, generator=gen("reciprocal"), dtype=torch.float64).mul(60).sub(30).exp2().float()
    assert torch.equal(reciprocal(s), (1 / s.double()).float())


def test_data_is_x_times_the_reciprocal_of_its_scale(gen):
    """What the fused kernel computes bit for bit: e4m3(x * (1 / scale)), one rounding for the
    reciprocal and one for the product, not e4m3(x / scale). The values sit within 3 float32 ulps
    of scale times an e4m3 rounding midpoint, where the two rules round to different e4m3 values
    for some of them."""
    amax = 300.0
    scale = torch.tensor(amax) / torch.tensor(E4M3_MAX)
    midpoints = torch.tensor([1.0625, 1.1875, 3.125, 11.0, 0.0107421875])  # halfway between e4m3 neighbours
    pick = torch.randint(len(midpoints), (4095,), generator=gen("midpoints"))
    ulps = torch.randint(-3, 4, (4095,), generator=gen("ulps"), dtype=torch.int32)
    near = ((midpoints[pick] * scale).view(torch.int32) + ulps).view(torch.float32)  # positive: bits step ulps
    x = torch.cat([torch.tensor([amax]), near]).view(1, 4096, 1, 1)
    xq = quantize_e4m3(x)
    assert xq.scale.item() == scale.item()
    assert torch.equal(xq.data.float(), cast_e4m3(x * reciprocal(scale)).float())
    assert not torch.equal(xq.data.float(), cast_e4m3(x / scale).float())


def test_residual_is_the_second_e4m3_term(gen):
    """x ~= (data + residual) * scale, exactly as cast_e4m3(x * (1 / scale) - data) per element; the
    two-term error is far below the one-term error; zero in a flushed block, NaN in a NaN block."""
    x = torch.randn(2, 300, 2, 64, generator=gen("residual"), dtype=torch.float64).to(torch.bfloat16)
    x[0, :128, 1] = 0
    x[1, 200, 0, 3] = float("nan")
    xq = quantize_e4m3(x, 128)
    rest = e4m3_residual(x, xq)
    assert rest.dtype == torch.float8_e4m3fn and rest.shape == x.shape
    s = expand_block_scale(xq.scale, 300, 128)
    plain = torch.isfinite(s).expand_as(x) & (s != torch.finfo(torch.float32).tiny).expand_as(x)
    inv = expand_block_scale(1 / xq.scale, 300, 128)
    assert torch.equal(rest[plain].float(), cast_e4m3(x.float() * inv - xq.data.float())[plain].float())
    assert torch.all(rest[0, :128, 1].float() == 0)
    assert torch.isnan(rest[1, 128:256, 0].float()).all() and not torch.isnan(rest[1, :128, 0].float()).any()
    ok = (slice(None), slice(0, 128), 0)  # finite, not flushed in either batch
    one = (xq.data.float() * s - x.float())[ok].pow(2).mean().sqrt()
    two = ((xq.data.float() + rest.float()) * s - x.float())[ok].pow(2).mean().sqrt()
    assert two < one / 8
    with pytest.raises(ValueError) as info:
        e4m3_residual(x[:, :100], xq)
    assert str(info.value) == "xq.data must have x's shape (2, 100, 2, 64), got (2, 300, 2, 64)"
