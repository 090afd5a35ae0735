"""fa3.flash_attn_func under torch.compile(fullgraph=True): no graph breaks, same results."""
import pytest
import torch

import fa3


def test_fake_impl_gives_shapes_without_running():
    q = torch.empty(2, 33, 8, 128, dtype=torch.bfloat16, device="meta")
    k = torch.empty(2, 40, 2, 128, dtype=torch.bfloat16, device="meta")
    out, lse = torch.ops.fa3.fwd(q, k, k, 0.1, True)
    assert out.shape == (2, 33, 8, 128) and out.dtype == torch.bfloat16
    assert lse.shape == (2, 8, 33) and lse.dtype == torch.float32


def test_autograd_formula_gives_gradient_shapes_without_running():
    """The backward is wired to fa3::fwd: on meta tensors autograd reaches fa3::bwd's fake impl."""
    q = torch.empty(2, 33, 8, 128, dtype=torch.bfloat16, device="meta", requires_grad=True)
    k, v = (torch.empty(2, 40, 2, 128, dtype=torch.bfloat16, device="meta", requires_grad=True) for _ in range(2))
    out, lse = torch.ops.fa3.fwd(q, k, v, 0.1, True)
    assert not lse.requires_grad, "the LSE is not differentiable"
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), torch.empty_like(out))
    assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)
    assert dq.dtype == dk.dtype == dv.dtype == torch.bfloat16


def test_backward_of_head_dim_256_is_refused_by_name():
    q, k, v = (torch.empty(1, 16, 2, 256, dtype=torch.float16, device="meta", requires_grad=True) for _ in range(3))
    out, _ = torch.ops.fa3.fwd(q, k, v, 0.1, False)
    with pytest.raises(ValueError, match="the fa3 backward supports head dims 64, 128; got head dim 256"):
        out.sum().backward()


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True])
def test_fullgraph_compile(causal):
    torch._dynamo.reset()

    def f(q, k, v):
        out, lse = fa3.flash_attn_func(q * 2, k, v, causal=causal, return_lse=True)
        return out.float().sum(-1), lse

    q, k, v = (torch.randn(2, 300, 4, 128, device="cuda", dtype=torch.float16) for _ in range(3))
    compiled = torch.compile(f, fullgraph=True)
    out, lse = compiled(q, k, v)
    ref_out, ref_lse = f(q, k, v)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(lse, ref_lse)
