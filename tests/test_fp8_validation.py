"""FP8 API input validation: runs without a GPU (the checks come before any kernel)."""
import pytest
import torch

import fa3


def qkv(dtype=torch.bfloat16, d=64, s=8):
    return (torch.randn(1, s, 2, d).to(dtype) for _ in range(3))


def test_mismatched_dtypes_are_named():
    q, k, v = qkv(torch.float8_e4m3fn)
    with pytest.raises(TypeError) as info:
        fa3.flash_attn_func(q, k.bfloat16(), v)
    assert str(info.value) == "k has dtype torch.bfloat16; allowed: torch.float8_e4m3fn"


def test_descales_only_for_fp8_inputs():
    q, k, v = qkv()
    with pytest.raises(ValueError) as info:
        fa3.flash_attn_func(q, k, v, q_descale=torch.ones(()))
    assert str(info.value) == "q_descale is for float8_e4m3fn inputs only; q has dtype torch.bfloat16"


def test_fp8_attention_wants_fp16_or_bf16():
    q, k, v = qkv(torch.float32)
    with pytest.raises(TypeError) as info:
        fa3.fp8_attention(q, k, v)
    assert str(info.value) == "q has dtype torch.float32; allowed: torch.float16, torch.bfloat16"


def test_head_dim_outside_the_hadamard_and_kernel_set():
    q, k, v = qkv(d=96)
    with pytest.raises(ValueError) as info:
        fa3.quantize_fp8(q, k, v)
    assert str(info.value) == "head dim 96 is not supported; allowed: 64, 128, 256"


def test_cpu_tensors_are_refused_with_the_reason():
    q, k, v = qkv()
    with pytest.raises(ValueError) as info:
        fa3.fp8_attention(q, k, v)
    assert str(info.value) == "quantize_fp8 needs CUDA tensors on a Hopper GPU, got tensors on cpu"


def test_flash_attn_fp8_wants_an_fp8qkv():
    with pytest.raises(TypeError) as info:
        fa3.flash_attn_fp8((1, 2, 3))
    assert str(info.value) == "qkv must be an fa3.Fp8QKV (from fa3.quantize_fp8), got tuple"



@pytest.mark.parametrize("d,q_residual,exc,message", [
    (128, True, ValueError, "q_residual=True is supported at head dim 64 only, got head dim 128"),
    (64, 1, TypeError, "q_residual must be a bool, got int"),
])
def test_q_residual_is_checked(d, q_residual, exc, message):
    q, k, v = qkv(d=d)
    with pytest.raises(exc) as info:
        fa3.quantize_fp8(q, k, v, q_residual=q_residual)
    assert str(info.value) == message


def test_fp8_tile_table_matches_the_extension():
    from fa3._ext import _C
    if _C is None:
        pytest.skip("fa3 extension not built")
    for hdim, tile in fa3.fp8.FP8_TILES.items():
        assert tuple(_C.fwd_tile_size(hdim, True)[:2]) == tile
