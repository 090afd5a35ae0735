"""scripts/check_sass.py's judgement of the backward's SASS: where P^T's exponentials sit among
the WGMMA waits (synthetic instruction lists; the real check runs on the built extension)."""
from script_module import load_script

check_sass = load_script("check_sass")

GEMM = "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR20], R24"
WAIT1 = "WARPGROUP.DEPBAR.LE gsb0, 0x1"
WAIT0 = "WARPGROUP.DEPBAR.LE gsb0, 0x0"
EXP = "MUFU.EX2 R1, R1"


def test_exponentials_under_dp_with_both_gemms_issued_first():
    # S^T, dP^T issued; wait for S^T; exponentials; dV; wait for dP^T; dQ, dK; wait; wait all.
    ins = [GEMM, GEMM, WAIT1, EXP, EXP, GEMM, WAIT1, GEMM, GEMM, WAIT1, WAIT0]
    assert check_sass.backward_exponentials_under_gemm(ins) == ([2, 0, 0], [2, 1, 2], True)


def test_exponentials_under_dp_after_the_previous_steps_dk():
    # S^T issued; wait for the previous step's dK; dP^T issued; wait for S^T; exponentials; ...
    ins = [GEMM, WAIT1, GEMM, WAIT1, EXP, EXP, GEMM, WAIT1, GEMM, GEMM, WAIT1]
    assert check_sass.backward_exponentials_under_gemm(ins) == ([0, 2, 0, 0], [1, 1, 1, 2], True)


def test_exponentials_after_a_full_wait_are_not_under_a_gemm():
    # ptxas hoisted a wait for everything above the exponentials: nothing runs under them.
    ins = [GEMM, GEMM, WAIT0, EXP, EXP, GEMM, WAIT1, GEMM, WAIT1]
    assert check_sass.backward_exponentials_under_gemm(ins)[2] is False


def test_exponentials_after_a_wait_with_nothing_issued_are_not_under_a_gemm():
    ins = [GEMM, GEMM, WAIT1, WAIT1, EXP, GEMM, WAIT1]
    assert check_sass.backward_exponentials_under_gemm(ins) == ([0, 1, 0], [2, 0, 1], False)


def _bwd_kernel(element: str, headdim: int, block_m: int, causal: bool) -> str:
    return (f"_ZN3fa316flash_bwd_kernelINS_18FlashBwdKernelSm90INS_15BwdKernelTraitsIN7cutlass{element}"
            f"ELi{headdim}ELi{block_m}ELi128EEENS_15MainloopBwdSm90IS5_Lb{int(causal)}EEENS_15EpilogueBwdSm90"
            f"IS5_EEEEEEvNT_6ParamsE")


def test_backward_spill_allowances_name_only_their_kernels():
    # Mangled names as cuobjdump prints them for the built extension (bf16 and fp16 alike).
    for element in ("10bfloat16_t", "6half_t"):
        assert check_sass.allowed_local(_bwd_kernel(element, 64, 128, False)) == 0  # no spill allowed
        assert check_sass.allowed_local(_bwd_kernel(element, 64, 128, True)) == 0
        assert check_sass.allowed_local(_bwd_kernel(element, 128, 80, False)) == 6
        assert check_sass.allowed_local(_bwd_kernel(element, 128, 64, True)) == 0  # no spill allowed
