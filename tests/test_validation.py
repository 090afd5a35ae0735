"""Every validation error of the public reference functions: exact text, right exception type."""
import pytest
import torch

import fa3
from fa3.reference import attention_ref, standard_attention

OK = torch.zeros(1, 4, 2, 8)


@pytest.mark.parametrize("args,exc,message", [
    ((None, OK, OK), TypeError, "q must be a torch.Tensor, got NoneType"),
    ((OK, OK.numpy(), OK), TypeError, "k must be a torch.Tensor, got ndarray"),
    ((OK.int(), OK, OK), TypeError, "q has dtype torch.int32; allowed: torch.float16, torch.bfloat16, "
                                    "torch.float32, torch.float64, torch.float8_e4m3fn"),
    ((torch.zeros(4, 2, 8), OK, OK), ValueError, "q must be a 4-D tensor (batch, seqlen, nheads, headdim), got shape (4, 2, 8)"),
    ((OK, OK, torch.zeros(1, 5, 2, 8)), ValueError, "k and v must have the same shape, got k (1, 4, 2, 8) and v (1, 5, 2, 8)"),
    ((OK, torch.zeros(2, 4, 2, 8), torch.zeros(2, 4, 2, 8)), ValueError, "k and v must have the batch size of q (1), got 2"),
    ((OK, torch.zeros(1, 4, 2, 16), torch.zeros(1, 4, 2, 16)), ValueError, "k and v must have the head dim of q (8), got 16"),
    ((torch.zeros(1, 4, 3, 8), OK, OK), ValueError, "nheads of q (3) must be divisible by nheads of k and v (2)"),
    ((torch.zeros(1, 0, 2, 8), OK, OK), ValueError, "seqlen_q must be >= 1, got 0 (q (1, 0, 2, 8), k (1, 4, 2, 8))"),
])
def test_attention_ref_rejects(args, exc, message):
    with pytest.raises(exc) as info:
        attention_ref(*args)
    assert str(info.value) == message


def test_same_device_required():
    meta = torch.zeros(1, 4, 2, 8, device="meta")
    with pytest.raises(ValueError) as info:
        attention_ref(OK, meta, meta)
    assert str(info.value) == "q, k and v must be on the same device, got q on cpu, k on meta, v on meta"


@pytest.mark.parametrize("scale,exc,message", [
    ("0.1", TypeError, "softmax_scale must be a float or None, got str"),
    (True, TypeError, "softmax_scale must be a float or None, got bool"),
    (float("nan"), ValueError, "softmax_scale must be finite and >= 0, got nan"),
    (float("inf"), ValueError, "softmax_scale must be finite and >= 0, got inf"),
    (-0.5, ValueError, "softmax_scale must be finite and >= 0, got -0.5"),
])
def test_softmax_scale_rejected(scale, exc, message):
    with pytest.raises(exc) as info:
        attention_ref(OK, OK, OK, softmax_scale=scale)
    assert str(info.value) == message


def test_flags_must_be_bool():
    with pytest.raises(TypeError) as info:
        attention_ref(OK, OK, OK, causal=1)
    assert str(info.value) == "causal must be a bool, got int"


def test_standard_attention_dtype_errors():
    with pytest.raises(ValueError) as info:
        standard_attention(OK, OK, OK, dtype=torch.int8)
    assert str(info.value) == ("dtype torch.int8 is not supported; allowed: torch.float16, torch.bfloat16, "
                               "torch.float32, torch.float8_e4m3fn")
    with pytest.raises(TypeError) as info:
        standard_attention(OK, OK, OK, dtype="fp16")
    assert str(info.value) == "dtype must be a torch.dtype, got str"


def test_rejected_calls_leave_inputs_untouched_and_process_working(gen):
    q = torch.randn(1, 4, 2, 8, generator=gen("keep"))
    before = q.clone()
    with pytest.raises(ValueError):
        attention_ref(q, OK, torch.zeros(1, 5, 2, 8))
    assert torch.equal(q, before)
    assert torch.isfinite(fa3.attention_ref(q, q, q)).all()


def test_standard_attention_out_dtype_error():
    with pytest.raises(ValueError) as info:
        standard_attention(OK, OK, OK, dtype=torch.float16, out_dtype=torch.int32)
    assert str(info.value) == ("out_dtype torch.int32 is not supported; allowed: torch.float16, torch.bfloat16, "
                               "torch.float32, torch.float64")


def test_smoke_alpha_type():
    from fa3.smoke import scale_2d

    with pytest.raises(TypeError) as info:
        scale_2d(torch.zeros(2, 2), "2")
    assert str(info.value) == "alpha must be a float, got str"


def _h(*shape, dtype=torch.float16):
    return torch.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("args,kwargs,exc,message", [
    ((_h(1, 8, 2, 64, dtype=torch.float32), _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {}, TypeError,
     "q has dtype torch.float32; allowed: torch.float16, torch.bfloat16"),
    ((_h(1, 8, 2, 64), _h(1, 8, 2, 64, dtype=torch.bfloat16), _h(1, 8, 2, 64)), {}, TypeError,
     "q, k and v must have the same dtype, got q torch.float16, k torch.bfloat16, v torch.float16"),
    ((_h(1, 8, 2, 96), _h(1, 8, 2, 96), _h(1, 8, 2, 96)), {}, ValueError,
     "head dim 96 is not supported; allowed: 64, 128, 256"),
    ((_h(1, 8, 2, 64, 2)[..., 0], _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {}, ValueError,
     "q must have a contiguous last dim (stride 1), got strides (2048, 256, 128, 2)"),
    ((_h(1, 8, 2, 68)[..., :64], _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {}, ValueError,
     "q's nheads stride must be a multiple of 8 elements (16 bytes), got strides (1088, 136, 68, 1)"),
    ((_h(1, 8, 2, 64), _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {}, ValueError,
     "q, k and v must be CUDA tensors on a Hopper GPU, got tensors on cpu"),
    ((_h(1, 8, 2, 64), _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {"causal": None}, ValueError,
     "q, k and v must be CUDA tensors on a Hopper GPU, got tensors on cpu"),
    ((_h(1, 8, 3, 64), _h(1, 8, 2, 64), _h(1, 8, 2, 64)), {}, ValueError,
     "nheads of q (3) must be divisible by nheads of k and v (2)"),
])
def test_flash_attn_func_rejects(args, kwargs, exc, message):
    with pytest.raises(exc) as info:
        fa3.flash_attn_func(*args, **kwargs)
    assert str(info.value) == message


def test_flash_attn_func_flag_and_scale_errors_on_meta():
    m = torch.empty(1, 8, 2, 64, dtype=torch.float16, device="meta")
    with pytest.raises(ValueError) as info:
        fa3.flash_attn_func(m, m, m)
    assert str(info.value) == "q, k and v must be CUDA tensors on a Hopper GPU, got tensors on meta"
