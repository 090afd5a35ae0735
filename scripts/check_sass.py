"""Checks on the SASS of the built extension (or any object file): tensor-core GEMMs are
warpgroup MMAs (HGMMA for fp16/bf16, QGMMA for FP8; no HMMA), nothing spills to local memory
(except the spills listed in KNOWN_SPILLS, each with its reason), and in every kernel with an
overlapped forward mainloop the softmax (MUFU.EX2) really sits between `wait_group 1` (S done)
and `wait_group 0` (PV done): ptxas may hoist the second wait above it, which silently turns the
intra-warpgroup overlap off (hopper/wgmma_utils.hpp, pin_before_wgmma_wait). In the backward
kernel the exponentials of P^T must sit under dP^T's GEMM: between a `wait_group 1` (S^T done)
and the next wait, with GEMMs (dP^T's) issued after the wait before it.

    python3 scripts/check_sass.py path/to/_C.so      # exit status 1 on a failed check
"""
import re
import subprocess
import sys

# Spills known and accepted: (regex on the mangled kernel name, local-memory instructions
# allowed, why). Every other kernel must have none.
KNOWN_SPILLS = [
    (r"float_e4m3_t.*Li256ELi128ELi128ELi2ELb\dEEENS_15MainloopFwdSm90IS6_Lb1E", 6,
     "FP8 head dim 256 causal: three words (the mask's column base and two values of the lazy rescale) are "
     "stored before the masked key tiles and reloaded in them (at most two per query tile), never in the "
     "unmasked loop; O and S hold the other registers"),
    (r"flash_bwd_kernel.*BwdKernelTraitsIN7cutlass\w+ELi128ELi80ELi128EEENS_15MainloopBwdSm90IS5_Lb0E", 6,
     "backward head dim 128, 80-row tiles: three loop-invariant words stored before the query loop, two "
     "reloaded once per query head, one once per step"),
]


def allowed_local(name: str) -> int:
    return next((n for pattern, n, _ in KNOWN_SPILLS if re.search(pattern, name)), 0)


def kernels(sass: str):
    """(name, instructions) for each function in a cuobjdump -sass listing."""
    for chunk in re.split(r"\n\s+Function : ", sass)[1:]:
        name = chunk.split("\n", 1)[0].strip()
        ins = [re.sub(r"^.*?\*/\s*", "", line).split(";")[0].strip()
               for line in chunk.split("\n") if re.search(r"/\*[0-9a-f]{4,}\*/", line)]
        yield name, ins


def softmax_under_gemm(ins, until: str):
    """MUFU.EX2 count between each 'wait_group 1' and the next instruction containing `until`."""
    counts = []
    for i, s in enumerate(ins):
        if "DEPBAR.LE gsb0, 0x1" in s:
            j, mufu = i + 1, 0
            while j < len(ins) and until not in ins[j]:
                mufu += "MUFU.EX2" in ins[j]
                j += 1
            counts.append(mufu)
    return counts


def gemms_before_waits(ins):
    """For each 'wait_group 1': the GEMM instructions issued between the previous wait (either
    kind) and it."""
    counts, since = [], 0
    for s in ins:
        if "DEPBAR.LE gsb0, 0x1" in s:
            counts.append(since)
        if "DEPBAR.LE gsb0" in s:
            since = 0
        since += "GMMA" in s
    return counts


def backward_exponentials_under_gemm(ins):
    """(MUFU.EX2 per window, GEMM instructions issued since the wait before each, whether P^T's
    exponentials run under a GEMM): windows from each 'wait_group 1' to the next wait of either
    kind; the one with the exponentials must follow a wait before which GEMMs were issued (dP^T's,
    still in flight)."""
    counts = softmax_under_gemm(ins, "DEPBAR.LE gsb0")
    issued = gemms_before_waits(ins)
    return counts, issued, any(counts) and all(g for m, g in zip(counts, issued) if m)


def main() -> int:
    sass = subprocess.run(["cuobjdump", "-sass", sys.argv[1]], check=True, capture_output=True, text=True).stdout
    ok = True
    hgmma = len(re.findall(r"\bHGMMA\b", sass))
    qgmma = len(re.findall(r"\bQGMMA\b", sass))
    hmma = len(re.findall(r"\bHMMA\b", sass))
    local = len(re.findall(r"\b(LDL|STL)\b", sass))
    print(f"SASS: {hgmma} HGMMA, {qgmma} QGMMA, {hmma} HMMA, {local} local-memory instructions")
    ok &= hgmma + qgmma > 0 and hmma == 0
    overlapped = 0
    for name, ins in kernels(sass):
        spills = sum(bool(re.match(r"(@!?U?P\w+\s+)?(LDL|STL)\b", i)) for i in ins)
        if spills > allowed_local(name):
            print(f"{spills} local-memory instructions (spills) in {name[:140]}")
            ok = False
        elif spills:
            print(f"{spills} local-memory instructions in {name[:100]}: known (KNOWN_SPILLS)")
        if "flash_bwd_kernel" in name:
            counts, issued, under = backward_exponentials_under_gemm(ins)
            if counts:
                overlapped += 1
            if not under:
                print(f"P^T NOT computed under dP^T's GEMM in {name[:100]}: MUFU.EX2 per wait window {counts}, "
                      f"GEMM instructions issued since the wait before each {issued}")
                ok = False
            continue
        counts = softmax_under_gemm(ins, "DEPBAR.LE gsb0, 0x0")
        if not counts:
            continue  # no overlapped mainloop (serial schedules, smoke kernels)
        overlapped += 1
        if min(counts) == 0:
            print(f"softmax NOT overlapped with the PV GEMM in {name[:100]}: MUFU.EX2 per wait window {counts}")
            ok = False
    print(f"overlapped mainloops: {overlapped} kernels checked, softmax between the waits in "
          f"{'all' if ok else 'not all'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
