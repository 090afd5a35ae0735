"""Summarizes the per-instruction source page that `scripts/profile.sh` exports from Nsight
Compute (`ncu --page source --csv --print-source sass`): warp stall samples by reason over the
whole kernel, then the instructions with the most samples, each with its top reasons.

    python3 scripts/ncu_stalls.py profile_hdim_128_seqlen_2048.csv [--top 40]
"""
import argparse
import csv
import signal


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = list(csv.reader(f))
    start = next(i for i, r in enumerate(rows) if r and r[0] == "Address")  # after the kernel-name line
    header, data = rows[start], [r for r in rows[start + 1:] if len(r) == len(rows[start])]
    col = {h: i for i, h in enumerate(header)}
    samples = col["Warp Stall Sampling (All Samples)"]
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    total = sum(int(r[samples]) for r in data)
    print(f"{len(data)} SASS instructions, {total} warp stall samples")
    print("\nby reason:")
    by_reason = {h: sum(int(r[col[h]]) for r in data) for h in reasons}
    for h, v in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        if v:
            print(f"  {h[6:]:20s} {v:8d}  {v / total:6.1%}")
    print(f"\ntop {args.top} instructions (index in the listing, samples, share, SASS, top reasons):")
    ranked = sorted(range(len(data)), key=lambda i: -int(data[i][samples]))[:args.top]
    for i in ranked:
        r = data[i]
        top = sorted(((int(r[col[h]]), h[6:]) for h in reasons), reverse=True)[:3]
        why = ", ".join(f"{h} {v}" for v, h in top if v)
        print(f"  {i:5d} {int(r[samples]):7d} {int(r[samples]) / total:6.1%}  {r[col['Source']].strip()[:58]:58s} {why}")


if __name__ == "__main__":
    main()
