"""The issues' bars, checked on saved runs: speed ratios on one benchmark run (python -m fa3.bench
--json), and for issue 5 also the accuracy ratios of one accuracy run (python -m fa3.accuracy
--json). Prints a table per check; exit status 1 if a bar is missed or its row is missing.

  issue 4 (bf16 forward):  fa3 / cuDNN SDPA at 16k and 2k tokens (hidden 2048)
  issue 5 (FP8 forward):   the FP8 kernel alone (fa3-fp8) and end to end (fa3-fp8-e2e) / cuDNN SDPA
                           bf16 at 16k; with --accuracy, per-tensor standard FP8 attention's RMSE /
                           the FP8 kernel's (block quantization + Hadamard) in every seqlen x hdim cell
  issue 6 (backward):      fa3 / cuDNN SDPA and fa3 / SDPA flash (FlashAttention-2), backward, 16k

    python3 scripts/check_bars.py --issue 5 benchmarks/results/<fp8 run>.json --accuracy <accuracy run>.json
"""
import argparse
import json
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from fa3.bench import BenchRecord, load_json


class SpeedBar(NamedTuple):
    impl: str
    peer: str
    mode: str  # the benchmark's mode: fwd or bwd
    hdim: int
    causal: bool
    seqlen: int
    bar: float  # the least impl / peer (TFLOP/s) allowed


def _bars(impl: str, peer: str, mode: str, table: Dict[Tuple[int, bool, int], float]) -> List[SpeedBar]:
    return [SpeedBar(impl, peer, mode, h, c, s, bar) for (h, c, s), bar in table.items()]


SPEED_BARS: Dict[int, List[SpeedBar]] = {
    4: _bars("fa3", "sdpa-cudnn", "fwd", {
        (64, False, 16384): 1.05, (128, False, 16384): 1.10, (256, False, 16384): 1.05,
        (64, False, 2048): 1.0, (128, False, 2048): 1.0, (256, False, 2048): 1.0,
        (64, True, 16384): 1.0, (128, True, 16384): 1.0, (256, True, 16384): 1.0}),
    5: _bars("fa3-fp8", "sdpa-cudnn", "fwd", {
        (64, False, 16384): 1.4, (128, False, 16384): 1.5, (256, False, 16384): 1.65, (128, True, 16384): 1.5})
    + _bars("fa3-fp8-e2e", "sdpa-cudnn", "fwd", {(128, False, 16384): 1.3}),
    6: _bars("fa3", "sdpa-cudnn", "bwd", {
        (64, False, 16384): 1.1, (64, True, 16384): 1.1, (128, False, 16384): 1.1, (128, True, 16384): 1.1})
    + _bars("fa3", "sdpa-flash", "bwd", {(128, False, 16384): 1.5, (128, True, 16384): 1.5}),
}

# Issue 5's accuracy bar: in every cell of the paper's grid (outlier inputs, non-causal), the
# baseline's RMSE over the FP8 kernel's (fa3.fp8_attention's defaults) at least this.
ACCURACY_BASELINE = "standard fp8 per-tensor"
ACCURACY_KERNEL = "fa3 fp8 block quant + hadamard kernel"
ACCURACY_OPTION = "fa3 fp8 block quant + hadamard + Q residual kernel"  # shown beside it, not checked
ACCURACY_BAR = 2.5
ACCURACY_GRID = [(s, h) for s in (1024, 4096, 16384) for h in (64, 128, 256)]


def check_speed(records: Sequence[BenchRecord], bars: Sequence[SpeedBar]) -> Tuple[List[str], bool]:
    """Table lines and whether every speed bar holds. Only bf16 rows count (the bars are for bf16
    inputs; an FP8 run's fa3-fp8 rows carry their input dtype, bf16): an fp16 run reads as n/a."""
    tflops: Dict[Tuple[str, str, int, bool, int], Optional[float]] = {
        (r.impl, r.mode, r.hdim, r.causal, r.seqlen_q): r.tflops for r in records if r.dtype == "bf16"}
    lines = [f"{'impl':>11} {'mode':>4} {'hdim':>4} {'causal':>6} {'seqlen':>6} {'TFLOP/s':>8} {'peer':>10} "
             f"{'TFLOP/s':>8} {'ratio':>6} {'bar':>5}  ok"]
    all_ok = True
    for b in bars:
        ours = tflops.get((b.impl, b.mode, b.hdim, b.causal, b.seqlen))
        theirs = tflops.get((b.peer, b.mode, b.hdim, b.causal, b.seqlen))
        if ours and theirs:
            ratio = ours / theirs
            ok = ratio >= b.bar
            cells = f"{ours:>8.1f} {b.peer:>10} {theirs:>8.1f} {ratio:>6.3f}"
        else:
            ok, cells = False, f"{'n/a':>8} {b.peer:>10} {'n/a':>8} {'-':>6}"
        all_ok &= ok
        lines.append(f"{b.impl:>11} {b.mode:>4} {b.hdim:>4} {str(b.causal):>6} {b.seqlen:>6} {cells} {b.bar:>5.2f}  "
                     f"{'yes' if ok else 'NO'}")
    return lines, all_ok


def check_accuracy(rows: Sequence[dict]) -> Tuple[List[str], bool]:
    """Table lines and whether the accuracy bar holds in every cell (rows: fa3.accuracy's JSON)."""
    rmse: Dict[Tuple[str, int, int], float] = {
        (r["method"], r["config"]["seqlen"], r["config"]["hdim"]): r["rmse"]
        for r in rows if not r["config"]["causal"]}
    lines = [f"{'seqlen':>6} {'hdim':>4} {'baseline':>10} {'fa3 FP8':>10} {'ratio':>6} {'bar':>5}  ok"
             f"   (Q residual: RMSE, ratio)"]
    all_ok = True
    for seqlen, hdim in ACCURACY_GRID:
        base = rmse.get((ACCURACY_BASELINE, seqlen, hdim))
        ours = rmse.get((ACCURACY_KERNEL, seqlen, hdim))
        if base and ours:
            ratio = base / ours
            ok = ratio >= ACCURACY_BAR
            cells = f"{base:>10.3e} {ours:>10.3e} {ratio:>6.2f}"
        else:
            ok, cells = False, f"{'n/a':>10} {'n/a':>10} {'-':>6}"
        option = rmse.get((ACCURACY_OPTION, seqlen, hdim))
        extra = f"   ({option:.3e}, {base / option:.2f})" if option and base else ""
        all_ok &= ok
        lines.append(f"{seqlen:>6} {hdim:>4} {cells} {ACCURACY_BAR:>5.2f}  {'yes' if ok else 'NO '}{extra}")
    return lines, all_ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--issue", type=int, choices=sorted(SPEED_BARS), required=True)
    ap.add_argument("run", help="a benchmark run's JSON (python -m fa3.bench --json)")
    ap.add_argument("--accuracy", metavar="JSON", help="issue 5: an accuracy run's JSON (python -m fa3.accuracy --json)")
    args = ap.parse_args(argv)
    if args.accuracy and args.issue != 5:
        ap.error("--accuracy is for --issue 5")
    lines, ok = check_speed(load_json(args.run), SPEED_BARS[args.issue])
    print("\n".join(lines))
    if args.accuracy:
        with open(args.accuracy) as f:
            acc_lines, acc_ok = check_accuracy(json.load(f))
        print("\n" + "\n".join(acc_lines))
        ok &= acc_ok
    print("every bar holds" if ok else "some bar is missed (or not measured)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
