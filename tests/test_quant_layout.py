"""The FP8 kernel's V layout (fa3.quant.layout): V^T, keys relabeled in groups of 16, zero padding."""
import pytest
import torch

from fa3.quant import from_v_layout, quantize_e4m3, to_v_layout
from fa3.quant.layout import V_KEY_PERM, padded_seqlen


def _keys(seqlen, dtype=torch.float32):
    """(1, seqlen, 1, 1) holding key index + 1, so that 0 can only be padding."""
    return (torch.arange(seqlen, dtype=torch.float32) + 1).view(1, seqlen, 1, 1).to(dtype)


def test_permutation_by_hand():
    vt = to_v_layout(_keys(20))
    assert vt.shape == (1, 1, 1, 32)
    # Group 0: position p holds key PERM[p]; group 1 has keys 16..19, the rest is padding.
    assert vt[0, 0, 0, :16].tolist() == [1, 2, 9, 10, 3, 4, 11, 12, 5, 6, 13, 14, 7, 8, 15, 16]
    assert vt[0, 0, 0, 16:].tolist() == [17, 18, 0, 0, 19, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def test_accumulator_keys_land_on_the_a_operand_positions():
    # The reason for the relabeling: positions 4t..4t+3 (the 8-bit A operand of thread t) hold
    # keys 2t, 2t+1, 8+2t, 9+2t (what thread t's fp32 accumulator holds).
    for t in range(4):
        assert V_KEY_PERM[4 * t:4 * t + 4] == (2 * t, 2 * t + 1, 8 + 2 * t, 9 + 2 * t)


@pytest.mark.parametrize("seqlen", [1, 15, 16, 17, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_round_trip(seqlen, dtype, gen):
    x = torch.randn(2, seqlen, 3, 8, generator=gen(f"rt{seqlen}")).to(dtype)
    vt = to_v_layout(x)
    assert vt.shape == (2, 3, 8, padded_seqlen(seqlen)) and vt.dtype == dtype and vt.is_contiguous()
    assert torch.equal(from_v_layout(vt, seqlen), x)
    # Each group of 16 positions holds its own keys (and padding zeros), only reordered.
    padded = torch.cat([x, x.new_zeros(2, padded_seqlen(seqlen) - seqlen, 3, 8)], dim=1)
    groups = padded.permute(0, 2, 3, 1).reshape(2, 3, 8, -1, 16)
    assert torch.equal(vt.reshape(2, 3, 8, -1, 16).sort(-1).values, groups.sort(-1).values)


def test_e4m3_round_trip_and_zero_padding(gen):
    x = torch.randn(2, 37, 3, 64, generator=gen("fp8"))
    data = quantize_e4m3(x, 16).data
    vt = to_v_layout(data)
    assert vt.dtype == torch.float8_e4m3fn and vt.shape == (2, 3, 64, 48)
    assert torch.equal(from_v_layout(vt, 37).view(torch.uint8), data.view(torch.uint8))
    # Keys 37..47 are padding: positions of group 2 that hold keys >= 5 of the group.
    pad = [p for p in range(16) if V_KEY_PERM[p] >= 37 - 32]
    assert (vt.view(torch.uint8)[..., [32 + p for p in pad]] == 0).all()
    assert (vt.view(torch.uint8)[..., [32 + p for p in range(16) if p not in pad]] != 0).any()


def test_strided_input(gen):
    base = torch.randn(2, 3, 40, 16, generator=gen("strided"))
    x = base.transpose(1, 2)[..., ::2]  # (2, 40, 3, 8), no dim contiguous
    assert torch.equal(to_v_layout(x), to_v_layout(x.contiguous()))


def test_layout_errors():
    with pytest.raises(TypeError, match=r"^data has dtype torch.int32; allowed: torch.float8_e4m3fn, "):
        to_v_layout(torch.zeros(1, 4, 2, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"^data must be a 4-D tensor \(batch, seqlen, nheads, headdim\), got shape"):
        to_v_layout(torch.zeros(4, 2, 8))
    with pytest.raises(ValueError) as info:
        from_v_layout(torch.zeros(1, 2, 8, 32), 40)
    assert str(info.value) == ("vt's last dim must be seqlen rounded up to a multiple of 16 (48 for seqlen=40), "
                               "got shape (1, 2, 8, 32)")
    with pytest.raises(ValueError, match=r"^vt must be a 4-D tensor \(batch, nheads, headdim, seqlen_padded\)"):
        from_v_layout(torch.zeros(2, 8, 32), 20)
    with pytest.raises(TypeError, match=r"^seqlen must be an int, got float$"):
        from_v_layout(torch.zeros(1, 2, 8, 32), 20.0)
    with pytest.raises(ValueError, match=r"^seqlen must be >= 1, got 0$"):
        from_v_layout(torch.zeros(1, 2, 8, 32), 0)
