"""Sustained-load speed, power and SM clock of attention implementations on the GPU: each case runs
back to back for --seconds while nvidia-smi is sampled, then prints its TFLOP/s in the first second
and in the last three, the median power and SM clock, and the last clock-event reasons (0x4: the
software power cap). The benchmark (python -m fa3.bench) runs under such load; this shows whether
a kernel is held by the power cap, where speed is work per joule.

    python3 scripts/power_probe.py --hdim 128 [--seqlen 16384] [--bwd] [--impl fa3 fa3-fp8 cudnn]
"""
import argparse
import statistics
import subprocess
import threading
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import fa3

QUERY = "power.draw,clocks.sm,temperature.gpu,clocks_event_reasons.active"


def sample(stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        r = subprocess.run(["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True)
        out.append([x.strip() for x in r.stdout.split(",")])
        time.sleep(0.2)


def make_case(impl: str, hdim: int, seqlen: int, bwd: bool):
    """A no-argument launch of one call of `impl` on the benchmark setting (hidden 2048)."""
    batch, nheads = 16384 // seqlen, 2048 // hdim
    shape = (batch, seqlen, nheads, hdim)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=bwd) for _ in range(3))
    if impl == "fa3-fp8":
        if bwd:
            raise SystemExit("fa3-fp8 has no backward")
        qkv = fa3.quantize_fp8(q, k, v)
        return lambda: fa3.flash_attn_fp8(qkv)
    if impl == "fa3":
        run = lambda: fa3.flash_attn_func(q, k, v)  # noqa: E731
    elif impl == "cudnn":
        qt, kt, vt = (x.detach().transpose(1, 2).contiguous().requires_grad_(bwd) for x in (q, k, v))

        def run():
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return F.scaled_dot_product_attention(qt, kt, vt)
        q, k, v = qt, kt, vt
    else:
        raise SystemExit(f"--impl must be fa3, fa3-fp8 or cudnn, got {impl}")
    if not bwd:
        return run
    out = run()
    dout = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hdim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=16384)
    ap.add_argument("--bwd", action="store_true", help="the backward (FLOPs 2.5x forward)")
    ap.add_argument("--impl", nargs="+", default=["fa3", "cudnn"])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--cooldown", type=float, default=5.0, help="idle seconds before each case")
    args = ap.parse_args()
    flops = 4 * 16384 * args.seqlen * args.hdim * (2048 // args.hdim) * (2.5 if args.bwd else 1.0)
    for impl in args.impl:
        launch = make_case(impl, args.hdim, args.seqlen, args.bwd)
        time.sleep(args.cooldown)
        launch()
        torch.cuda.synchronize()
        stop, samples, speeds = threading.Event(), [], []
        sampler = threading.Thread(target=sample, args=(stop, samples))
        sampler.start()
        t0 = time.time()
        while time.time() - t0 < args.seconds:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(10):
                launch()
            end.record()
            torch.cuda.synchronize()
            speeds.append((time.time() - t0, flops / (start.elapsed_time(end) / 10 / 1e3) / 1e12))
        stop.set()
        sampler.join()
        # (Each measurement is 10 calls; a slow case may have none inside the first second.)
        first = statistics.median([s for t, s in speeds if t < 1.0] or [speeds[0][1]])
        last = statistics.median([s for t, s in speeds if t > args.seconds - 3.0] or [speeds[-1][1]])
        power = [float(s[0]) for s in samples]
        clock = [float(s[1]) for s in samples]
        print(f"hdim {args.hdim} seqlen {args.seqlen} {'bwd' if args.bwd else 'fwd'} {impl}: TFLOP/s first 1 s "
              f"{first:.0f}, last 3 s {last:.0f}; power median {statistics.median(power):.0f} W (max {max(power):.0f}); "
              f"SM clock median {statistics.median(clock):.0f} MHz (min {min(clock):.0f}); last sample "
              f"{', '.join(samples[-1])}", flush=True)


if __name__ == "__main__":
    main()
