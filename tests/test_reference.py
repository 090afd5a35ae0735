"""fa3.reference vs an independent float64 computation written with Python loops."""
import math

import pytest
import torch

import fa3.reference as ref_mod
from fa3.reference import attention_ref, causal_mask, standard_attention


def naive_attention(q, k, v, causal, scale):
    """Loops and math.exp over Python floats: no torch softmax, einsum or broadcasting."""
    b_, sq, h_, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    group = h_ // hkv
    Q, K, V = q.tolist(), k.tolist(), v.tolist()
    out = [[[[0.0] * d for _ in range(h_)] for _ in range(sq)] for _ in range(b_)]
    lse = [[[0.0] * sq for _ in range(h_)] for _ in range(b_)]
    for b in range(b_):
        for h in range(h_):
            hk = h // group
            for i in range(sq):
                keys = [j for j in range(sk) if not causal or j <= i + sk - sq]
                if not keys:
                    lse[b][h][i] = -math.inf
                    continue
                s = {j: scale * sum(Q[b][i][h][c] * K[b][j][hk][c] for c in range(d)) for j in keys}
                mx = max(s.values())
                w = {j: math.exp(s[j] - mx) for j in keys}
                z = sum(w.values())
                for c in range(d):
                    out[b][i][h][c] = sum(w[j] * V[b][j][hk][c] for j in keys) / z
                lse[b][h][i] = mx + math.log(z)
    return torch.tensor(out, dtype=torch.float64), torch.tensor(lse, dtype=torch.float64)


@pytest.mark.parametrize("sq,sk", [(5, 5), (3, 7), (7, 3), (1, 4), (4, 1), (6, 2)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("nheads,nheads_kv", [(2, 2), (4, 2), (3, 1)])
def test_matches_naive_loops(sq, sk, causal, nheads, nheads_kv, gen):
    g = gen(f"{sq}-{sk}-{causal}-{nheads}-{nheads_kv}")
    q = torch.randn(2, sq, nheads, 4, generator=g)
    k = torch.randn(2, sk, nheads_kv, 4, generator=g)
    v = torch.randn(2, sk, nheads_kv, 4, generator=g)
    out, lse = attention_ref(q, k, v, causal=causal, return_lse=True)
    exp_out, exp_lse = naive_attention(q, k, v, causal, 4 ** -0.5)
    assert out.dtype == torch.float64 and out.shape == (2, sq, nheads, 4)
    assert lse.shape == (2, nheads, sq)
    torch.testing.assert_close(out, exp_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lse, exp_lse, rtol=1e-12, atol=1e-12)


def test_fully_masked_rows_give_zero_and_minus_inf(gen):
    g = gen("masked")
    q, k, v = torch.randn(1, 6, 2, 8, generator=g), torch.randn(1, 2, 2, 8, generator=g), torch.randn(1, 2, 2, 8, generator=g)
    out, lse = attention_ref(q, k, v, causal=True, return_lse=True)
    # Bottom-right alignment: with Sq=6, Sk=2 rows 0..3 see no key, row 4 sees key 0.
    assert torch.equal(out[:, :4], torch.zeros_like(out[:, :4]))
    assert torch.all(lse[:, :, :4] == -math.inf)
    assert torch.isfinite(out[:, 4:]).all() and torch.isfinite(lse[:, :, 4:]).all()
    torch.testing.assert_close(out[0, 4, 0], v[0, 0, 0].double())


def test_causal_mask_is_bottom_right_aligned():
    m = causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert causal_mask(4, 2).tolist() == [[False, False], [False, False], [True, False], [True, True]]


def test_softmax_scale_is_used(gen):
    g = gen("scale")
    q, k, v = (torch.randn(1, 5, 1, 16, generator=g) for _ in range(3))
    out = attention_ref(q, k, v, softmax_scale=0.3)
    torch.testing.assert_close(out, naive_attention(q, k, v, False, 0.3)[0], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out, attention_ref(q, k, v))


def test_nan_propagates_only_where_it_is_seen(gen):
    g = gen("nan")
    q, k, v = (torch.randn(1, 4, 1, 8, generator=g) for _ in range(3))
    q[0, 2, 0, 3] = float("nan")
    out = attention_ref(q, k, v)
    assert torch.isnan(out[0, 2]).all()
    assert torch.isfinite(out[0, [0, 1, 3]]).all()
    k[0, 1, 0, 0] = float("nan")
    assert torch.isnan(attention_ref(q, k, v)).all()


@pytest.mark.parametrize("causal", [False, True])
def test_chunking_does_not_change_results(causal, monkeypatch, gen):
    g = gen(f"chunk{causal}")
    q, k, v = torch.randn(2, 37, 2, 8, generator=g), torch.randn(2, 29, 1, 8, generator=g), torch.randn(2, 29, 1, 8, generator=g)
    whole = attention_ref(q, k, v, causal=causal, return_lse=True)
    std_whole = standard_attention(q, k, v, dtype=torch.float16, causal=causal)
    monkeypatch.setattr(ref_mod, "_SCORE_ELEMENTS_PER_CHUNK", 3 * 2 * 2 * 29)  # 3 rows per chunk
    chunked = attention_ref(q, k, v, causal=causal, return_lse=True)
    # Same math, only BLAS summation order may differ: float64 rounding, or one fp16 ulp.
    torch.testing.assert_close(chunked, whole, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(standard_attention(q, k, v, dtype=torch.float16, causal=causal), std_whole,
                               rtol=2 ** -10, atol=2 ** -14)


def _rel(out, ref):
    return ((out.double() - ref).norm() / ref.norm()).item()


def test_standard_attention_error_orders_by_precision(gen):
    g = gen("std")
    q, k, v = (torch.randn(1, 128, 2, 64, generator=g) for _ in range(3))
    ref = attention_ref(q, k, v)
    errors = {dt: _rel(standard_attention(q, k, v, dtype=dt), ref)
              for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn)}
    assert errors[torch.float32] < 1e-6
    assert 1e-5 < errors[torch.float16] < 2e-3
    assert errors[torch.float16] < errors[torch.bfloat16] < 1e-2
    assert errors[torch.bfloat16] < errors[torch.float8_e4m3fn] < 0.15


def test_standard_attention_output_dtypes(gen):
    g = gen("dtypes")
    q, k, v = (torch.randn(1, 8, 1, 16, generator=g) for _ in range(3))
    assert standard_attention(q, k, v, dtype=torch.float16).dtype == torch.float16
    assert standard_attention(q, k, v, dtype=torch.float8_e4m3fn).dtype == torch.bfloat16
    assert standard_attention(q, k, v, dtype=torch.float8_e4m3fn, out_dtype=torch.float16).dtype == torch.float16


def test_standard_attention_fp8_p_scale(gen):
    """P x448 before the e4m3 cast keeps P's small values out of the subnormals: lower error on
    long rows than casting P as it is (the paper's baseline); bad p_scale values are refused."""
    g = gen("pscale")
    q, k, v = (torch.randn(1, 512, 2, 64, generator=g) for _ in range(3))
    ref = attention_ref(q, k, v)
    unscaled = _rel(standard_attention(q, k, v, dtype=torch.float8_e4m3fn), ref)
    scaled = _rel(standard_attention(q, k, v, dtype=torch.float8_e4m3fn, p_scale=448.0), ref)
    assert scaled < 0.8 * unscaled
    with pytest.raises(ValueError, match=r"^p_scale must be a finite number > 0, got 0$"):
        standard_attention(q, k, v, dtype=torch.float8_e4m3fn, p_scale=0)
    with pytest.raises(ValueError, match=r"^p_scale applies to dtype torch.float8_e4m3fn only, got dtype "):
        standard_attention(q, k, v, dtype=torch.float16, p_scale=448.0)


def test_standard_attention_causal_masked_rows_and_nan(gen):
    g = gen("stdmask")
    q, k, v = torch.randn(1, 5, 1, 8, generator=g), torch.randn(1, 3, 1, 8, generator=g), torch.randn(1, 3, 1, 8, generator=g)
    for dt in (torch.float16, torch.float8_e4m3fn):
        out = standard_attention(q, k, v, dtype=dt, causal=True)
        assert torch.equal(out[:, :2].float(), torch.zeros(1, 2, 1, 8))
        assert torch.isfinite(out[:, 2:].float()).all()
    q[0, 4, 0, 0] = float("nan")
    out = standard_attention(q, k, v, dtype=torch.float16, causal=True)
    assert torch.isnan(out[0, 4]).all() and torch.isfinite(out[0, 2:4]).all()
