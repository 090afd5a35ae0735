"""The fused FP8 block-quantization kernel (fa3.quant.quantize_blocks_cuda) against the reference
quantize_e4m3(hadamard_rotate(x)), bit for bit; its argument checks and fake shapes on the CPU."""
import pytest
import torch

from fa3.quant import e4m3_residual, hadamard_rotate, quantize_blocks_cuda, quantize_e4m3, to_v_layout
from fa3.quant.e4m3 import expand_block_scale

TINY = torch.finfo(torch.float32).tiny
SEED = 1234


def _x(shape, dtype, g, device="cuda"):
    """N(0, 1) with N(0, 100) outliers at rate 0.001 (the FA3 paper's inputs)."""
    x = torch.randn(shape, generator=g)
    x += torch.randn(shape, generator=g) * 10 * (torch.rand(shape, generator=g) < 0.001)
    return x.to(dtype=dtype, device=device)


def _reference(x, block_size, seed, v_layout):
    ref = quantize_e4m3(hadamard_rotate(x, seed) if seed is not None else x, block_size)
    return (to_v_layout(ref.data) if v_layout else ref.data), ref.scale


def _assert_same(x, block_size, seed=None, v_layout=False):
    """Kernel == reference: data byte for byte; scales bit for bit, NaN where the reference's is."""
    data, scale = quantize_blocks_cuda(x, block_size, seed=seed, v_layout=v_layout)
    ref_data, ref_scale = _reference(x, block_size, seed, v_layout)
    assert data.dtype == torch.float8_e4m3fn and data.shape == ref_data.shape and data.is_contiguous()
    assert scale.dtype == torch.float32 and scale.shape == ref_scale.shape
    mismatch = (data.view(torch.uint8) != ref_data.view(torch.uint8)).sum().item()
    assert mismatch == 0, f"{mismatch} of {data.numel()} bytes differ"
    nan = ref_scale.isnan()
    assert torch.equal(scale.isnan(), nan)
    assert torch.equal(scale[~nan].view(torch.int32), ref_scale[~nan].view(torch.int32))
    return data, scale


# --- CPU: argument checks (metadata only, before the extension is touched) and fake shapes ---

def _h(*shape, dtype=torch.float16, device="cpu"):
    return torch.zeros(*shape, dtype=dtype, device=device)


@pytest.mark.parametrize("args,kwargs,exc,message", [
    ((_h(1, 8, 2, 64, dtype=torch.float32), 128), {}, TypeError,
     "x has dtype torch.float32; allowed: torch.float16, torch.bfloat16"),
    ((_h(8, 2, 64), 128), {}, ValueError,
     "x must be a 4-D tensor (batch, seqlen, nheads, headdim), got shape (8, 2, 64)"),
    ((_h(1, 8, 2, 96), 128), {}, ValueError, "head dim 96 is not supported; allowed: 64, 128, 256"),
    ((_h(1, 8, 2, 64), 0), {}, ValueError, "block_size must be >= 1, got 0"),
    ((_h(1, 8, 2, 64), 128.0), {}, TypeError, "block_size must be an int, got float"),
    ((_h(1, 8, 2, 64), 257), {}, ValueError, "block_size must be <= 256, got 257"),
    ((_h(1, 8, 2, 64), 128), {"v_layout": 1}, TypeError, "v_layout must be a bool, got int"),
    ((_h(1, 8, 2, 64), 100), {"v_layout": True}, ValueError,
     "block_size must be a multiple of 16 with v_layout=True (V^T relabels keys in groups of 16), got 100"),
    ((_h(1, 8, 2, 64), 128), {"seed": "1"}, TypeError, "seed must be an int, got str"),
    ((_h(1, 8, 2, 64), 128), {"seed": -1}, ValueError, "seed must be in [0, 2**63), got -1"),
    ((_h(1, 8, 2, 64, 2)[..., 0], 128), {}, ValueError,
     "x must have a contiguous last dim (stride 1), got strides (2048, 256, 128, 2)"),
    ((_h(1, 8, 2, 64), 128), {"seed": 3}, ValueError, "x must be a CUDA tensor on a Hopper GPU, got a tensor on cpu"),
    ((_h(1, 8, 2, 64), 128), {"residual": None}, TypeError, "residual must be a bool, got NoneType"),
    ((_h(1, 8, 2, 64), 128), {"residual": True, "v_layout": True}, ValueError,
     "residual=True is for Q and K; it cannot be combined with v_layout=True"),
    ((_h(1, 8, 2, 64, device="meta"), 128), {}, ValueError,
     "x must be a CUDA tensor on a Hopper GPU, got a tensor on meta"),
])
def test_rejects(args, kwargs, exc, message):
    with pytest.raises(exc) as info:
        quantize_blocks_cuda(*args, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("v_layout,residual,data_shape", [(False, False, (2, 300, 3, 128)),
                                                          (False, True, (2, 300, 3, 128)),
                                                          (True, False, (2, 3, 128, 304))])
def test_fake_impl_gives_shapes_without_running(v_layout, residual, data_shape):
    x = torch.empty(2, 300, 3, 128, dtype=torch.bfloat16, device="meta")
    data, scale, rest = torch.ops.fa3.quantize_fp8_blocks(x, 176, None, v_layout, residual)
    assert data.shape == data_shape and data.dtype == torch.float8_e4m3fn
    assert scale.shape == (2, 3, 2) and scale.dtype == torch.float32
    assert rest.shape == (data_shape if residual else (0,)) and rest.dtype == torch.float8_e4m3fn


# --- GPU: bit-exact against the reference ---

@pytest.mark.gpu
@pytest.mark.parametrize("v_layout", [False, True])
@pytest.mark.parametrize("seed", [None, SEED])
@pytest.mark.parametrize("block_size", [128, 160, 176, 192, 224])
@pytest.mark.parametrize("headdim", [64, 128, 256])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_matches_reference(dtype, headdim, block_size, seed, v_layout, gen):
    g = gen(f"{dtype}{headdim}{block_size}{seed}{v_layout}")
    for seqlen in (1, 17, 300, 1000):
        _assert_same(_x((2, seqlen, 3, headdim), dtype, g), block_size, seed, v_layout)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [None, SEED])
@pytest.mark.parametrize("headdim", [64, 128, 256])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_residual_matches_reference(dtype, headdim, seed, gen):
    """The second e4m3 term equals e4m3_residual bit for bit (the first term and scales too), also in
    a zero (flushed) block and a NaN block; and Q's error drops by more than 8x with it."""
    g = gen(f"residual{dtype}{headdim}{seed}")
    for seqlen in (1, 300, 1000):
        x = _x((2, seqlen, 3, headdim), dtype, g)
        if seqlen == 1000:
            x[0, :192, 1] = 0  # a flushed block
            x[1, 400, 2, 5] = float("nan")
        data, scale, rest = quantize_blocks_cuda(x, 192, seed=seed, residual=True)
        rotated = hadamard_rotate(x, seed) if seed is not None else x
        ref = quantize_e4m3(rotated, 192)
        ref_rest = e4m3_residual(rotated, ref)
        assert torch.equal(data.view(torch.uint8), ref.data.view(torch.uint8))
        assert rest.shape == data.shape and rest.dtype == torch.float8_e4m3fn
        mismatch = (rest.view(torch.uint8) != ref_rest.view(torch.uint8)).sum().item()
        assert mismatch == 0, f"{mismatch} of {rest.numel()} residual bytes differ"
        finite = torch.isfinite(scale).all()
        if seqlen == 300 and finite:
            s = expand_block_scale(scale, seqlen, 192)
            one = (data.float() * s - rotated.float()).pow(2).mean().sqrt()
            two = ((data.float() + rest.float()) * s - rotated.float()).pow(2).mean().sqrt()
            assert two < one / 8, f"two-term RMSE {two:.3e} vs one term {one:.3e}"


@pytest.mark.gpu
@pytest.mark.parametrize("block_size", [1, 7, 16, 48, 100, 256])
@pytest.mark.parametrize("seed", [None, SEED])
def test_other_block_sizes(block_size, seed, gen):
    g = gen(f"bs{block_size}{seed}")
    for headdim in (64, 128, 256):
        x = _x((1, 333, 2, headdim), torch.bfloat16, g)
        _assert_same(x, block_size, seed)
        if block_size % 16 == 0:
            _assert_same(x, block_size, seed, v_layout=True)


@pytest.mark.gpu
@pytest.mark.parametrize("v_layout", [False, True])
@pytest.mark.parametrize("headdim", [64, 128, 256])
def test_strided_inputs(headdim, v_layout, gen):
    g = gen(f"strided{headdim}{v_layout}")
    # (batch, heads, seqlen, d) storage seen as (batch, seqlen, heads, d): 16-byte strides.
    x = _x((2, 3, 300, headdim), torch.float16, g).transpose(1, 2)
    _assert_same(x, 160, SEED, v_layout)
    # Strides and a base address that are not 16-byte multiples: the kernel's element-wise loads.
    wide = _x((2, 300, 3, headdim + 4), torch.bfloat16, g)
    _assert_same(wide[..., :headdim], 128, SEED, v_layout)
    _assert_same(wide[..., 2:headdim + 2], 192, None, v_layout)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [None, SEED])
def test_zero_block_is_flushed(seed, gen):
    x = _x((2, 300, 3, 128), torch.float16, gen("zero"))
    x[1, 128:256, 2] = 0
    data, scale = _assert_same(x, 128, seed)
    assert scale[1, 2, 1].item() == TINY
    assert (data[1, 128:256, 2].view(torch.uint8) == 0).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seed", [None, SEED])
@pytest.mark.parametrize("v_layout", [False, True])
def test_non_finite_values_poison_their_block_only(dtype, seed, v_layout, gen):
    x = _x((2, 300, 3, 64), dtype, gen(f"poison{dtype}{seed}{v_layout}"))
    x[0, 130, 1, 5] = float("nan")
    x[0, 200, 1, 7] = float("inf")    # same block as the NaN
    x[1, 10, 2, 3] = -float("inf")    # a block with an Inf only: scale Inf, that element NaN
    data, scale = _assert_same(x, 128, seed, v_layout)
    assert scale[0, 1, 1].isnan() and scale[1, 2, 0].isinf()
    assert torch.isfinite(scale[0, 1, 0]) and torch.isfinite(scale[0, 1, 2]) and torch.isfinite(scale[0, 0, 1])


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [None, SEED])
def test_extreme_magnitudes(seed, gen):
    # bf16 spans float32's exponents: near FLT_MAX the butterfly overflows to Inf (and Inf - Inf
    # to NaN) as the reference's does; near FLT_MIN the values are float32 subnormals, which the
    # kernel must not flush (the build uses --use_fast_math); in between, flushed blocks.
    x = torch.randn(1, 512, 2, 256, generator=gen(f"extreme{seed}"))
    x[:, :128] *= 5e37
    x[:, 128:256] *= 2e-36
    x[:, 256:384] *= 1e-38
    x[:, 384:] *= 1e-42
    _assert_same(x.to(device="cuda", dtype=torch.bfloat16), 128, seed)
    _assert_same(x.clamp(-60000, 60000).to(device="cuda", dtype=torch.float16), 128, seed)


@pytest.mark.gpu
def test_runs_on_the_current_stream(gen):
    x = _x((2, 1000, 3, 128), torch.bfloat16, gen("stream"))
    ref_data, ref_scale = _reference(x, 128, SEED, True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        data, scale = quantize_blocks_cuda(x, 128, seed=SEED, v_layout=True)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(data.view(torch.uint8), ref_data.view(torch.uint8))
    assert torch.equal(scale, ref_scale)


@pytest.mark.gpu
def test_fullgraph_compile_of_the_op(gen):
    torch._dynamo.reset()
    x = _x((2, 300, 3, 128), torch.float16, gen("compile"))

    def f(x):
        return quantize_blocks_cuda(x * 2, 128, seed=7, v_layout=True)

    data, scale = torch.compile(f, fullgraph=True)(x)
    ref_data, ref_scale = f(x)
    assert torch.equal(data.view(torch.uint8), ref_data.view(torch.uint8))
    assert torch.equal(scale, ref_scale)


@pytest.mark.gpu
def test_cpp_checks_the_raw_arguments():
    from fa3._ext import extension

    ext = extension()
    x = torch.zeros(1, 32, 1, 64, dtype=torch.float16, device="cuda")
    out = torch.empty(1, 32, 1, 64, dtype=torch.uint8, device="cuda")
    scale = torch.empty(1, 1, 1, device="cuda")
    args = dict(x=x.data_ptr(), x_stride=(2048, 64, 64), out=out.data_ptr(), residual=0, scale=scale.data_ptr(),
                signs=0,
                batch=1, seqlen=32, heads=1, headdim=64, block_size=32, dtype=0, v_layout=False, stream=0)
    for change, message in [({"headdim": 96}, "headdim must be 64, 128 or 256, got 96"),
                            ({"dtype": 2}, "dtype must be 0 (fp16) or 1 (bf16), got 2"),
                            ({"block_size": 257}, "block_size must be in [1, 256], got 257"),
                            ({"block_size": 24, "v_layout": True},
                             "block_size must be a multiple of 16 with v_layout (V^T relabels keys in groups of 16), "
                             "got 24"),
                            ({"out": 0}, "out must not be a null pointer"),
                            ({"out": out.data_ptr() + 8}, "out must be 16-byte aligned"),
                            ({"residual": out.data_ptr() + 8}, "residual must be 16-byte aligned"),
                            ({"residual": out.data_ptr(), "v_layout": True, "block_size": 32},
                             "residual is for Q and K (v_layout must be false)")]:
        with pytest.raises(ValueError) as info:
            ext.quantize_fp8(**{**args, **change})
        assert str(info.value).startswith(message)
