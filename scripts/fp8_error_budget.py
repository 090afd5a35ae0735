"""Where fa3's FP8 error comes from: the RMSE vs FP64 of the FP8 algorithm (Hadamard rotation of Q
and K, e4m3 with one scale per kernel tile, P as e4m3(P * 2^8)) with one of its roundings left
out at a time (Q, K, both, P, V, P and V), and with Q as two e4m3 terms (fa3.fp8's q_residual),
on the FA3 paper's outlier inputs (fa3.accuracy), beside the paper's baseline (standard FP8 per
tensor). Runs on the CPU. The softmax is taken over whole rows here (the kernel's is online, by key
tile, with lazy rescaling, so its P values, and their e4m3 roundings, differ by factors up to
2^0.8): the "fa3 FP8" column comes within a few percent of python -m fa3.accuracy's emulated and
kernel rows (1k / hdim 128: 8.24e-3 here, 8.02e-3 there).

    python3 scripts/fp8_error_budget.py --seqlen 1024 4096 --hdim 64 128 256
"""
import argparse
import math
from typing import Dict

import torch

from fa3.accuracy import AccuracyConfig, error_metrics, outlier_inputs
from fa3.fp8 import FP8_TILES
from fa3.quant.e4m3 import Fp8Tensor, cast_e4m3, dequantize_e4m3, e4m3_residual, quantize_e4m3
from fa3.quant.emulation import P_SHIFT
from fa3.quant.hadamard import hadamard_rotate
from fa3.reference import attention_ref, standard_attention

# Column -> the roundings left out ("q", "k", "p", "v"), or "q2" for Q as two e4m3 terms.
VARIANTS: Dict[str, str] = {"fa3 FP8": "", "Q exact": "q", "K exact": "k", "Q,K exact": "qk", "P exact": "p",
                            "V exact": "v", "P,V exact": "pv", "Q 2 terms": "q2"}


def _dequantized(x: torch.Tensor, block: int, two_terms: bool = False) -> torch.Tensor:
    """x through e4m3 with one scale per block (and its second e4m3 term with `two_terms`)."""
    xq = quantize_e4m3(x, block)
    out = dequantize_e4m3(xq).double()
    if two_terms:
        out = out + dequantize_e4m3(Fp8Tensor(e4m3_residual(x, xq), xq.scale, xq.block_size)).double()
    return out


def fp8_attention_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, exact: str) -> torch.Tensor:
    """fa3's FP8 algorithm (non-causal, whole-row softmax) in float64, without the roundings in `exact`."""
    block_m, block_n = FP8_TILES[q.shape[-1]]
    qr, kr = hadamard_rotate(q.double(), 0), hadamard_rotate(k.double(), 0)
    q8 = qr if "q" in exact and exact != "q2" else _dequantized(qr, block_m, two_terms=exact == "q2")
    k8 = kr if "k" in exact else _dequantized(kr, block_n)
    v8 = v.double() if "v" in exact else _dequantized(v.double(), block_n)
    s = torch.einsum("bqhd,bkhd->bhqk", q8, k8) * (q.shape[-1] ** -0.5 * math.log2(math.e))
    p = torch.exp2(s - s.amax(-1, keepdim=True))
    p8 = p if "p" in exact else cast_e4m3((p * 2.0 ** P_SHIFT).float()).double() * 2.0 ** -P_SHIFT
    return torch.einsum("bhqk,bkhd->bqhd", p8 / p.sum(-1, keepdim=True), v8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seqlen", type=int, nargs="+", default=[1024])
    ap.add_argument("--hdim", type=int, nargs="+", default=[64, 128, 256], choices=sorted(FP8_TILES))
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print("RMSE vs FP64 (and the paper's baseline over it), outlier inputs, batch 1, 8 heads, non-causal")
    print(f"{'seqlen':>6} {'hdim':>4} {'baseline':>9} " + " ".join(f"{name:>16}" for name in VARIANTS))
    for seqlen in args.seqlen:
        for hdim in args.hdim:
            q, k, v = outlier_inputs(AccuracyConfig(seqlen=seqlen, hdim=hdim), torch.device("cpu"))
            ref = attention_ref(q, k, v)
            base = error_metrics(standard_attention(q, k, v, dtype=torch.float8_e4m3fn), ref)["rmse"]
            cells = []
            for exact in VARIANTS.values():
                rmse = error_metrics(fp8_attention_parts(q, k, v, exact).to(q.dtype), ref)["rmse"]
                cells.append(f"{rmse:.3e} ({base / rmse:.2f}x)")
            print(f"{seqlen:>6} {hdim:>4} {base:>9.3e} " + " ".join(f"{c:>16}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
