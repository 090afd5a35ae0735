"""Walsh-Hadamard transform and the seeded random rotation used for incoherent processing."""
import pytest
import torch

from fa3.quant import fwht, hadamard_rotate, hadamard_unrotate, random_signs


def sylvester(d):
    """H_1 = [1], H_2n = [[H, H], [H, -H]], by Kronecker products (independent of fwht)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < d:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64), h)
    return h


@pytest.mark.parametrize("d", [1, 2, 4, 8, 64, 128, 256])
def test_fwht_is_the_sylvester_hadamard_matrix(d):
    h = fwht(torch.eye(d, dtype=torch.float64))
    assert torch.equal(h, sylvester(d))
    assert torch.equal(h @ h, d * torch.eye(d, dtype=torch.float64))


@pytest.mark.parametrize("d", [64, 128, 256])
def test_rotation_is_orthogonal_and_inverts(d, gen):
    m = hadamard_rotate(torch.eye(d, dtype=torch.float64), seed=7)  # rows of M
    torch.testing.assert_close(m @ m.T, torch.eye(d, dtype=torch.float64), rtol=0, atol=1e-14)
    expected = sylvester(d) * random_signs(d, 7).double() / d ** 0.5  # M = H diag(s) / sqrt(d)
    torch.testing.assert_close(m, expected, rtol=0, atol=1e-15)
    x = torch.randn(2, 5, 3, d, generator=gen(f"inv{d}"), dtype=torch.float64)
    torch.testing.assert_close(hadamard_unrotate(hadamard_rotate(x, 3), 3), x, rtol=0, atol=1e-13)


def test_rotation_preserves_qk_products(gen):
    g = gen("qk")
    q, k = torch.randn(1, 9, 2, 128, generator=g, dtype=torch.float64), torch.randn(1, 11, 2, 128, generator=g, dtype=torch.float64)
    qr, kr = hadamard_rotate(q, 11), hadamard_rotate(k, 11)
    torch.testing.assert_close(torch.einsum("bqhd,bkhd->bhqk", qr, kr),
                               torch.einsum("bqhd,bkhd->bhqk", q, k), rtol=0, atol=1e-12)


def test_rotation_spreads_an_outlier():
    x = torch.zeros(128, dtype=torch.float64)
    x[17] = 100.0
    y = hadamard_rotate(x, 0)
    assert torch.allclose(y.abs(), torch.full_like(y, 100.0 / 128 ** 0.5))


def test_signs_are_seeded_and_plus_minus_one():
    s = random_signs(256, 5)
    assert set(s.tolist()) == {-1.0, 1.0}
    assert torch.equal(s, random_signs(256, 5))
    assert not torch.equal(s, random_signs(256, 6))
    assert (s == 1).sum().item() not in (0, 256)


def test_float32_rotation_keeps_dtype_and_accuracy(gen):
    x = torch.randn(3, 4, 2, 64, generator=gen("f32"))
    y = hadamard_rotate(x.half(), 1)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), hadamard_rotate(x.half().double(), 1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("d", [3, 96, 100])
def test_head_dim_must_be_power_of_two(d):
    with pytest.raises(ValueError, match=rf"^the last dim of x \(head dim\) must be a power of two \(1, 2, 4, \.\.\., 128, 256, \.\.\.\), got {d}$"):
        hadamard_rotate(torch.zeros(1, 2, 1, d), 0)
    with pytest.raises(ValueError, match=rf"^dim must be a power of two .*, got {d}$"):
        random_signs(d, 0)


def test_seed_validation():
    with pytest.raises(TypeError, match=r"^seed must be an int, got float$"):
        random_signs(8, 1.5)
    with pytest.raises(ValueError, match=r"^seed must be in \[0, 2\*\*63\), got -1$"):
        random_signs(8, -1)


def test_rotate_rejects_non_float():
    with pytest.raises(TypeError, match=r"^x has dtype torch.int64; allowed: torch.float16, torch.bfloat16, torch.float32, torch.float64$"):
        hadamard_rotate(torch.zeros(2, 8, dtype=torch.int64), 0)
