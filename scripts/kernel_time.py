"""TFLOP/s of one fa3 path on shapes of the benchmark setting (16k tokens, hidden 2048), one line
per shape: the probe for interleaved A/B runs of several builds, each run under its own
PYTHONPATH, alternating, so that a drift of clocks under the power cap falls on all alike
(scripts/ab_kernel.sh).
  --mode fp8: the FP8 kernel alone (inputs quantized once, block quantization + Hadamard);
  --mode fp8-q-residual: the same with Q's second e4m3 term (q_residual=True; head dim 64);
  --mode bwd: the bf16 backward alone (preprocess, main kernel, postprocess; FLOPs 2.5 x forward);
  --mode fwd: the bf16 forward;
  --mode cudnn: cuDNN's bf16 forward (torch SDPA), the peer of the issues' speed bars.

    python3 scripts/kernel_time.py --label A --mode fp8 --case 128:16384 128:16384:causal 64:16384
"""
import argparse
import functools

import torch

from fa3._timing import attention_flops, time_ms
from fa3.bench import PREPARE_FOR_MODE, available_impls

# --mode -> (benchmark impl, benchmark mode, the impl's options): the runners python -m fa3.bench times.
MODES = {"fp8": ("fa3-fp8", "fwd", {}), "fp8-q-residual": ("fa3-fp8", "fwd", {"q_residual": True}),
         "bwd": ("fa3", "bwd", {}), "fwd": ("fa3", "fwd", {}), "cudnn": ("sdpa-cudnn", "fwd", {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="")
    ap.add_argument("--mode", choices=sorted(MODES), default="fp8")
    ap.add_argument("--case", nargs="+", required=True, help="HDIM:SEQLEN[:causal]")
    args = ap.parse_args()
    impl, mode, options = MODES[args.mode]
    prepare = PREPARE_FOR_MODE[mode](functools.partial(available_impls()[impl], **options))
    for case in args.case:
        hdim, seqlen, *rest = case.split(":")
        hdim, seqlen, causal = int(hdim), int(seqlen), rest == ["causal"]
        batch, nheads = 16384 // seqlen, 2048 // hdim
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(batch, seqlen, nheads, hdim, device="cuda", dtype=torch.bfloat16, generator=g)
                   for _ in range(3))
        fn, ctx = prepare(q, k, v, causal)
        with ctx:
            ms = time_ms(fn)
        tflops = attention_flops(batch, nheads, seqlen, seqlen, hdim, causal, mode) / ms / 1e9
        print(f"{args.label} {case} {ms:.4f} ms {tflops:.1f} TFLOP/s", flush=True)


if __name__ == "__main__":
    main()
