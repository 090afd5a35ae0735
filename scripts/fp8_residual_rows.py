"""Whether Q's second e4m3 term (q_residual) could go to some query rows only: the FP8 algorithm's
RMSE vs FP64 (scripts/fp8_error_budget.py's whole-row form, head dim 64, the paper's outlier
inputs) with the second term given to the fraction of rows with the largest |Q| element or Q
norm (known before S is), and the share of the all-rows gain each keeps. Rows are independent
here, so a row's output is taken from the one-term or the two-term run. Runs on the CPU.

    python3 scripts/fp8_residual_rows.py --seqlen 1024 4096
"""
import argparse
import math

import torch

from fa3.accuracy import AccuracyConfig, outlier_inputs
from fa3.reference import attention_ref
from fp8_error_budget import fp8_attention_parts

FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seqlen", type=int, nargs="+", default=[1024])
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print("head dim 64, outlier inputs, batch 1, 8 heads, non-causal; RMSE (share of the all-rows gain kept)")
    print(f"{'seqlen':>6} {'rows by':>9} " + " ".join(f"{f:>18.0%}" for f in FRACTIONS))
    for seqlen in args.seqlen:
        q, k, v = outlier_inputs(AccuracyConfig(seqlen=seqlen, hdim=64), torch.device("cpu"))
        ref = attention_ref(q.double(), k.double(), v.double()).double()
        row_err = {terms: ((fp8_attention_parts(q, k, v, exact) - ref) ** 2).sum(-1) for terms, exact in
                   ((1, ""), (2, "q2"))}
        values = row_err[1].numel() * q.shape[-1]
        rmse = {t: math.sqrt(e.sum() / values) for t, e in row_err.items()}
        print(f"{seqlen:>6} {'(all)':>9} one term {rmse[1]:.4e}, two terms {rmse[2]:.4e}")
        for name, score in (("max |Q|", q.double().abs().amax(-1)), ("|Q|", q.double().norm(dim=-1))):
            cells = []
            for fraction in FRACTIONS:
                chosen = torch.zeros(score.numel(), dtype=torch.bool)
                chosen[score.flatten().argsort(descending=True)[: int(fraction * score.numel())]] = True
                mixed = math.sqrt(torch.where(chosen.view_as(score), row_err[2], row_err[1]).sum() / values)
                cells.append(f"{mixed:.4e} ({(rmse[1] - mixed) / (rmse[1] - rmse[2]):.2f})")
            print(f"{seqlen:>6} {name:>9} " + " ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
