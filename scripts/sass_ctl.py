"""SASS with each instruction's scheduling control bits decoded (sm_70 and later, 128-bit
instructions): the stall count, the scoreboard it sets when its result is written (wb) or when its
source registers have been read (rb, stores and reductions), and the scoreboards it waits for.
Which instructions share a scoreboard is what cuobjdump does not show: a wait on scoreboard n
lasts until every outstanding operation counted on n is done (session 24: the pipeline's mbarrier
wait at a backward step's start shared SB1 with the previous step's dQ reductions' register reads).

    python3 scripts/sass_ctl.py build/.../_C.so --kernel 'flash_bwd_kernel.*Lb1' --match 'REDG|PHASECHK' --context 3
    cuobjdump -sass x.cubin > x.sass && python3 scripts/sass_ctl.py x.sass

Bits 105-125 of an instruction (the high 64-bit word's bits 41-61): stall [0:4), yield [4],
write scoreboard [5:8), read scoreboard [8:11) (7 = none), wait mask [11:17), reuse [17:21).
"""
import argparse
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator, List, Optional

_INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*/\* 0x([0-9a-f]{16}) \*/")
_HIGH = re.compile(r"^\s*/\* 0x([0-9a-f]{16}) \*/\s*$")
_FUNCTION = re.compile(r"Function : (\S+)")


@dataclass
class Instruction:
    function: str
    address: int
    text: str
    stall: int
    yield_flag: bool
    write_sb: Optional[int]
    read_sb: Optional[int]
    wait: List[int]
    reuse: int


def decode_control(high_word: int) -> dict:
    """The control fields of an instruction whose upper 64-bit word is high_word."""
    ctl = high_word >> 41
    wb, rb = (ctl >> 5) & 7, (ctl >> 8) & 7
    return {"stall": ctl & 0xF, "yield_flag": bool((ctl >> 4) & 1), "write_sb": None if wb == 7 else wb,
            "read_sb": None if rb == 7 else rb, "wait": [j for j in range(6) if (ctl >> (11 + j)) & 1],
            "reuse": (ctl >> 17) & 0xF}


def parse(sass: str) -> Iterator[Instruction]:
    """Instructions of cuobjdump -sass output (two lines each: text + low word, then high word)."""
    lines = sass.splitlines()
    function = ""
    for i, line in enumerate(lines):
        f = _FUNCTION.search(line)
        if f:
            function = f.group(1)
            continue
        m = _INSTR.search(line)
        if m and i + 1 < len(lines):
            h = _HIGH.match(lines[i + 1])
            if h:
                yield Instruction(function, int(m.group(1), 16), m.group(2).strip(),
                                  **decode_control(int(h.group(1), 16)))


def fmt(ins: Instruction) -> str:
    sb = lambda v: "-" if v is None else str(v)  # noqa: E731
    wait = ",".join(map(str, ins.wait)) or "-"
    return (f"{ins.address:06x}  {ins.text[:76]:76s} stall {ins.stall:2d}  wb {sb(ins.write_sb)}  "
            f"rb {sb(ins.read_sb)}  wait {wait}")


def main() -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="a binary cuobjdump reads (.so, .cubin, .o) or its saved -sass output")
    ap.add_argument("--kernel", default="", help="regex on the mangled function name")
    ap.add_argument("--match", default="", help="regex on the instruction text: print matches only")
    ap.add_argument("--context", type=int, default=0, help="instructions shown around each match")
    args = ap.parse_args()
    if args.path.endswith(".sass"):
        sass = open(args.path).read()
    else:
        sass = subprocess.run(["cuobjdump", "-sass", args.path], check=True, capture_output=True, text=True).stdout
    instrs = [i for i in parse(sass) if re.search(args.kernel, i.function)]
    if not instrs:
        print(f"no instructions in a function matching {args.kernel!r}", file=sys.stderr)
        return 1
    show = set(range(len(instrs)))
    if args.match:
        hits = [n for n, i in enumerate(instrs) if re.search(args.match, i.text)]
        show = {k for n in hits for k in range(n - args.context, n + args.context + 1) if 0 <= k < len(instrs)}
    function = None
    for n in sorted(show):
        if instrs[n].function != function:
            function = instrs[n].function
            print(f"== {function}")
        print(fmt(instrs[n]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
