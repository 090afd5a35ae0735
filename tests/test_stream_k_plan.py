"""The persistent forward kernel's work plan (hopper/stream_k_plan.h), walked on the CPU through
the binding's stream_k_schedule: every key-tile step of every tile done exactly once, tiles cut
at most once with both pieces meeting in one slot, and the last wave balanced."""
import pytest

import fa3
from fa3._ext import extension

pytestmark = pytest.mark.skipif(not fa3.features().extension, reason=f"extension not built: {fa3.EXTENSION_ERROR}")

MIN_STEPS = 4  # StreamKPlan::kMinStepsPerTile


def steps_done(schedule, steps_per_tile):
    done = {}
    for cta, units in enumerate(schedule):
        for tile, begin, end, slot in units:
            assert 0 <= begin < end <= steps_per_tile
            for s in range(begin, end):
                assert (tile, s) not in done, f"step {s} of tile {tile} done twice"
                done[(tile, s)] = (cta, slot)
    return done


@pytest.mark.parametrize("num_tiles,num_ctas,steps", [
    (2048, 132, 94), (2048, 132, 12),  # hdim 128, 16k tokens: seqlen 16k and 2k
    (2816, 132, 16), (2752, 132, 128),  # hdim 64 (192-row tiles), 2k and 16k
    (133, 132, 4), (263, 132, 5), (400, 132, 5), (1000, 7, 9), (50, 3, 1000)])
def test_split_plan_covers_every_step_once_and_pairs_the_pieces(num_tiles, num_ctas, steps):
    schedule = extension().stream_k_schedule(num_tiles, num_ctas, steps)
    assert len(schedule) == num_ctas
    done = steps_done(schedule, steps)
    assert len(done) == num_tiles * steps
    pieces = {}
    for cta, units in enumerate(schedule):
        for tile, begin, end, slot in units:
            whole = begin == 0 and end == steps
            assert (slot == -1) == whole, f"unit {(tile, begin, end, slot)} of CTA {cta}"
            if not whole:
                # Only a CTA's first and last units can be pieces; they meet in the slot of the
                # CTA whose range starts inside the tile.
                assert slot == (cta if begin > 0 else cta + 1) and 1 <= slot < num_ctas
                pieces.setdefault(tile, []).append((begin, end, slot))
    for tile, ps in pieces.items():
        assert len(ps) == 2, f"tile {tile} cut into {len(ps)} pieces"
        (b0, e0, s0), (b1, e1, s1) = sorted(ps)
        assert b0 == 0 and e0 == b1 and e1 == steps and s0 == s1
    # Balanced: every CTA does the same number of steps, to within one.
    per_cta = [sum(e - b for _, b, e, _ in units) for units in schedule]
    assert max(per_cta) - min(per_cta) <= 1
    assert sum(per_cta) == num_tiles * steps


@pytest.mark.parametrize("num_tiles,num_ctas,steps", [
    (264, 132, 94),  # whole waves
    (2048, 132, MIN_STEPS - 1),  # too few key tiles to be worth cutting
    (100, 100, 50)])  # one partial wave: one tile per CTA
def test_no_split_hands_out_whole_tiles_with_stride(num_tiles, num_ctas, steps):
    schedule = extension().stream_k_schedule(num_tiles, num_ctas, steps)
    for cta, units in enumerate(schedule):
        assert units == [(t, 0, steps, -1) for t in range(cta, num_tiles, num_ctas)]


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match=r"^need 1 <= num_ctas <= num_tiles and steps_per_tile >= 1$"):
        extension().stream_k_schedule(10, 11, 4)
