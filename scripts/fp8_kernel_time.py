"""TFLOP/s of fa3's FP8 kernel alone (inputs quantized once, block quantization + Hadamard) on
shapes of the benchmark setting (16k tokens, hidden 2048), one line per shape: the probe for
interleaved A/B runs of two builds, each run under its own PYTHONPATH, alternating, so that a
drift of clocks under the power cap falls on both alike (scripts/ab_fp8_kernel.sh).

    python3 scripts/fp8_kernel_time.py --label A --case 128:16384 128:16384:causal 64:16384
"""
import argparse

import torch

import fa3
from fa3._timing import attention_flops, time_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="")
    ap.add_argument("--case", nargs="+", required=True, help="HDIM:SEQLEN[:causal]")
    args = ap.parse_args()
    for case in args.case:
        hdim, seqlen, *rest = case.split(":")
        hdim, seqlen, causal = int(hdim), int(seqlen), rest == ["causal"]
        batch, nheads = 16384 // seqlen, 2048 // hdim
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(batch, seqlen, nheads, hdim, device="cuda", dtype=torch.bfloat16, generator=g)
                   for _ in range(3))
        qkv = fa3.quantize_fp8(q, k, v)
        ms = time_ms(lambda: fa3.flash_attn_fp8(qkv, causal=causal))
        tflops = attention_flops(batch, nheads, seqlen, seqlen, hdim, causal) / ms / 1e9
        print(f"{args.label} {case} {ms:.4f} ms {tflops:.1f} TFLOP/s", flush=True)


if __name__ == "__main__":
    main()
