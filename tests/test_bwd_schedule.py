"""The backward kernel's work per CTA (hopper/bwd_schedule.h), walked on the CPU through the
binding's bwd_schedule: every (key tile, query head, query tile) step done exactly once, the last
wave's key tiles cut into equal pieces when that finishes sooner, never when causal or
deterministic, and the workspace holding each cut tile's dK and dV sum."""
import pytest

import fa3
from fa3._ext import extension

pytestmark = pytest.mark.skipif(not fa3.features().extension, reason=f"extension not built: {fa3.EXTENSION_ERROR}")

H100_SMS = 132


def block_m(headdim, causal):  # hopper/bwd_tile_size.h
    return 128 if headdim == 64 else 64 if causal else 80


def every_step(batch, seqlen_q, seqlen_k, nheads, nheads_kv, headdim):
    n_blocks = -(-seqlen_k // 128)
    m_blocks = -(-seqlen_q // block_m(headdim, False))
    return [(n, h, b, g, m) for b in range(batch) for h in range(nheads_kv) for n in range(n_blocks)
            for g in range(nheads // nheads_kv) for m in range(m_blocks)]


@pytest.mark.parametrize("shape,pieces", [
    ((1, 16384, 16384, 16, 16, 128), 9),  # 16k tokens, hidden 2048: 2048 key tiles, 68 past 15 waves
    ((2, 8192, 8192, 16, 16, 128), 5),  # 103 steps per tile: fewer, longer pieces
    ((1, 1100, 21120, 3, 1, 128), 4),  # MQA: 165 key tiles; a tile's 42 steps run over 3 query heads
    ((1, 1100, 21120, 3, 1, 64), 2),
])
def test_last_wave_is_cut_into_pieces_that_cover_every_step_once(shape, pieces):
    got_pieces, ctas = extension().bwd_schedule(*shape, False, False, H100_SMS)
    assert got_pieces == pieces
    done = [(n, h, b, g, m) for n, h, b, _, steps in ctas for g, m in steps]
    assert sorted(done) == sorted(every_step(*shape))  # each step once
    tiles = len(set((n, h, b) for n, h, b, *_ in ctas))
    whole = [c for c in ctas if c[3] == -1]
    cut = [c for c in ctas if c[3] >= 0]
    assert len(whole) == tiles - tiles % H100_SMS and len(cut) == tiles % H100_SMS * pieces
    for i in range(0, len(cut), pieces):  # a cut tile's pieces: consecutive CTAs, one index, equal sizes
        group = cut[i:i + pieces]
        assert len(set(c[:4] for c in group)) == 1 and group[0][3] == i // pieces
        sizes = [len(c[4]) for c in group]
        assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("causal,deterministic", [(True, False), (False, True)])
def test_causal_and_deterministic_calls_run_each_key_tile_whole_in_order(causal, deterministic):
    # Causal tiles differ in length; deterministic mode's turns follow the key tiles' launch order.
    shape = (1, 16384, 16384, 16, 16, 128)
    pieces, ctas = extension().bwd_schedule(*shape, causal, deterministic, H100_SMS)
    assert pieces == 1
    assert [c[:4] for c in ctas] == [(n, h, 0, -1) for h in range(16) for n in range(128)]


@pytest.mark.parametrize("shape", [
    (1, 4096, 4096, 33, 33, 128),  # 1056 key tiles: whole waves
    (1, 16384, 16384, 32, 32, 64),  # 4096 key tiles: 4 past 31 waves, under a quarter of the SMs
    (8, 2048, 2048, 16, 16, 128),  # 26 steps per tile: pieces would be under 10 steps
])
def test_no_tile_is_cut_when_that_cannot_finish_sooner(shape):
    pieces, ctas = extension().bwd_schedule(*shape, False, False, H100_SMS)
    assert pieces == 1 and all(c[3] == -1 for c in ctas)


def test_workspace_holds_each_cut_tiles_dk_and_dv_sum():
    ext = extension()
    args = (1, 16384, 16384, 16, 16, 128, False)
    uncut = ext.bwd_workspace_bytes(*args, True, H100_SMS)  # deterministic: nothing cut
    tickets = (68 * 4 + 255) // 256 * 256
    sums = 68 * 2 * 128 * 128 * 4  # dK and dV of a 128-key tile, fp32
    assert ext.bwd_workspace_bytes(*args, False, H100_SMS) == uncut + tickets + sums
