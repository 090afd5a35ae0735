"""One attention shape of the benchmark setting (16k tokens, hidden 2048), launched a few times:
the program that `scripts/profile.sh` hands to Nsight Compute. With --fp8, the FP8 kernel
alone on inputs quantized once beforehand (block quantization + Hadamard); with --bwd, one
forward and then the backward (preprocess, main kernel, dQ postprocess) a few times.

    python3 scripts/attn_case.py --hdim 128 --seqlen 2048 [--causal] [--fp8 | --bwd [--deterministic]] [--launches 4]

--kernels prints the GPU time per kernel over the launches (torch.profiler): what a call
spends outside its main kernel (preprocess, postprocess, memsets, copies).
"""
import argparse

import torch

import fa3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hdim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--fp8", action="store_true", help="the FP8 kernel (inputs quantized before the launches)")
    ap.add_argument("--bwd", action="store_true", help="the backward (after one forward)")
    ap.add_argument("--deterministic", action="store_true", help="with --bwd: its deterministic mode")
    ap.add_argument("--launches", type=int, default=4)
    ap.add_argument("--kernels", action="store_true", help="print GPU time per kernel (torch.profiler)")
    args = ap.parse_args()
    if args.fp8 and args.bwd:
        ap.error("--fp8 and --bwd are separate cases; give one")
    batch, nheads = 16384 // args.seqlen, 2048 // args.hdim
    q, k, v = (torch.randn(batch, args.seqlen, nheads, args.hdim, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    if args.bwd:
        q, k, v = (x.requires_grad_() for x in (q, k, v))
        out = fa3.flash_attn_func(q, k, v, causal=args.causal, deterministic=args.deterministic)
        dout = torch.randn_like(out)
        launch = lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)  # noqa: E731
    elif args.fp8:
        qkv = fa3.quantize_fp8(q, k, v)
        launch = lambda: fa3.flash_attn_fp8(qkv, causal=args.causal)  # noqa: E731
    else:
        launch = lambda: fa3.flash_attn_func(q, k, v, causal=args.causal)  # noqa: E731
    if not args.kernels:
        for _ in range(args.launches):
            launch()
        torch.cuda.synchronize()
        return
    launch()  # warm-up, outside the profile
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(args.launches):
            launch()
        torch.cuda.synchronize()
    print(f"GPU time per launch, {args.launches} launches:")
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.device_time_total for e in events)
    for e in sorted(events, key=lambda e: -e.device_time_total):
        print(f"  {e.device_time_total / args.launches / 1e3:9.3f} ms  {e.device_time_total / total:6.1%}  "
              f"x{e.count // args.launches}  {e.key[:110]}")
    print(f"  {total / args.launches / 1e3:9.3f} ms  total")


if __name__ == "__main__":
    main()
