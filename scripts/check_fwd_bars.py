"""Issue 4's speed bars, checked on one saved forward benchmark run (python -m fa3.bench --json):
fa3 / cuDNN SDPA, bf16, 16k tokens, hidden 2048. Prints a table; exit status 1 if a bar is
missed or its configuration is missing from the run.

    python3 scripts/check_fwd_bars.py benchmarks/results/<run>.json
"""
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from fa3.bench import BenchRecord, load_json

# (hdim, causal, seqlen) -> the least fa3 / cuDNN allowed.
BARS: Dict[Tuple[int, bool, int], float] = {
    (64, False, 16384): 1.05, (128, False, 16384): 1.10, (256, False, 16384): 1.05,
    (64, False, 2048): 1.0, (128, False, 2048): 1.0, (256, False, 2048): 1.0,
    (64, True, 16384): 1.0, (128, True, 16384): 1.0, (256, True, 16384): 1.0,
}


def check(records: Sequence[BenchRecord], peer: str = "sdpa-cudnn") -> Tuple[List[str], bool]:
    """Table lines and whether every bar holds."""
    tflops: Dict[Tuple[str, int, bool, int], Optional[float]] = {
        (r.impl, r.hdim, r.causal, r.seqlen_q): r.tflops for r in records if r.dtype == "bf16"}
    lines = [f"{'hdim':>4} {'causal':>6} {'seqlen':>6} {'fa3':>7} {peer:>10} {'ratio':>6} {'bar':>5}  ok"]
    all_ok = True
    for (hdim, causal, seqlen), bar in BARS.items():
        ours, theirs = tflops.get(("fa3", hdim, causal, seqlen)), tflops.get((peer, hdim, causal, seqlen))
        if ours and theirs:
            ratio = ours / theirs
            ok = ratio >= bar
            cells = f"{ours:>7.1f} {theirs:>10.1f} {ratio:>6.3f}"
        else:
            ok, cells = False, f"{'n/a':>7} {'n/a':>10} {'-':>6}"
        all_ok &= ok
        lines.append(f"{hdim:>4} {str(causal):>6} {seqlen:>6} {cells} {bar:>5.2f}  {'yes' if ok else 'NO'}")
    return lines, all_ok


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    lines, ok = check(load_json(argv[0]))
    print("\n".join(lines))
    print("every bar holds" if ok else "some bar is missed (or not measured)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
