"""scripts/sass_ctl.py decodes the scheduling control bits of cuobjdump's SASS (CPU only). The
fixture is cuobjdump output of the head dim 128 backward kernel (sm_90a): its mbarrier polling loop
and a dQ reduction. The decoded fields must obey what the instructions need: a reduction releases its
source registers through a read scoreboard and writes nothing; a try-wait sets the predicate through
a write scoreboard, and the instructions that use the predicate wait on that scoreboard."""
from script_module import load_script

sass_ctl = load_script("sass_ctl")

SASS = """
	code for sm_90a
		Function : _ZN3fa316flash_bwd_kernelEv
        /*42b0*/                   REDG.E.ADD.F32x4.FTZ.RN.STRONG.GPU desc[UR24][R236.64+0x4800], R188 ;  /* 0x004800bcec0079a6 */
                                                                                                          /* 0x0003e4000c10f798 */
        /*d470*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [R13+URZ+0x38800], R12 ;            /* 0x0388000c0d0075a7 */
                                                                                                          /* 0x0002a6000800017f */
        /*d480*/              @!P0 NANOSLEEP.SYNCS 0x989680 ;                                             /* 0x009896800000895d */
                                                                                                          /* 0x004fea0003900000 */
        /*d490*/              @!P0 SYNCS.PHASECHK.TRANS64 P0, [R13+URZ+0x38800], R12 ;                    /* 0x0388000c0d0085a7 */
                                                                                                          /* 0x000ea4000800007f */
        /*d4a0*/              @!P0 BRA 0xd460 ;                                                           /* 0xfffffffc00ec8947 */
                                                                                                          /* 0x004fea000383ffff */
"""


def test_parse_reads_every_instruction_with_its_function_and_address():
    instrs = list(sass_ctl.parse(SASS))
    assert [i.address for i in instrs] == [0x42B0, 0xD470, 0xD480, 0xD490, 0xD4A0]
    assert all(i.function == "_ZN3fa316flash_bwd_kernelEv" for i in instrs)
    assert instrs[0].text.startswith("REDG.E.ADD.F32x4") and instrs[-1].text == "@!P0 BRA 0xd460"


def test_reduction_releases_its_registers_on_a_read_scoreboard_only():
    red = next(sass_ctl.parse(SASS))
    assert red.read_sb is not None and red.write_sb is None


def test_predicate_users_wait_on_the_try_wait_write_scoreboard():
    _, try_wait, sleep, poll, branch = sass_ctl.parse(SASS)
    assert try_wait.write_sb is not None and try_wait.read_sb is not None  # R13 (its address) is released too
    assert try_wait.write_sb in sleep.wait          # @!P0 needs the first try-wait's P0
    assert poll.write_sb == try_wait.write_sb       # the retry sets P0 on the same scoreboard
    assert poll.write_sb in branch.wait             # and the loop's branch waits for it
    assert try_wait.read_sb not in sleep.wait + branch.wait  # nothing in the loop rewrites R13


def test_fields_stay_in_their_ranges():
    for ins in sass_ctl.parse(SASS):
        assert 0 <= ins.stall <= 15 and 0 <= ins.reuse <= 15
        assert all(0 <= w <= 5 for w in ins.wait)
        assert ins.write_sb in (None, *range(6)) and ins.read_sb in (None, *range(6))
