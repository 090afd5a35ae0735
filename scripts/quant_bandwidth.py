"""Achieved bandwidth of the fused FP8 quantization kernel against a plain device copy of the same
tensor (torch's clone: read + write of the input, the most a one-pass kernel can hope for), 16k
tokens, hidden 2048, bf16, per head dim. Bytes moved by quantization: the bf16 input read once,
e4m3 data and fp32 scales written. Each call is replayed from a CUDA graph, so the time is the
GPU's, not Python's (an eager call of the op costs tens of microseconds on the CPU, as long as
the kernel itself).

    python3 scripts/quant_bandwidth.py [--json out.json]
"""
import argparse
import json

import torch

from fa3._provenance import git_commit, today
from fa3._timing import time_ms
from fa3.fp8 import fp8_block_sizes
from fa3.quant import quantize_blocks_cuda


def graph_ms(fn) -> float:
    """Median GPU time of fn replayed from a CUDA graph (captured after a warm-up call)."""
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return time_ms(graph.replay, min_time_ms=100.0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--json")
    args = p.parse_args()
    rows = []
    print(f"{'hdim':>4} {'what':>22} {'ms':>8} {'GB/s':>8} {'copy GB/s':>10} {'of copy':>8}")
    for hdim in (64, 128, 256):
        x = torch.randn(1, 16384, 2048 // hdim, hdim, device="cuda", dtype=torch.bfloat16)
        copy_ms = graph_ms(lambda: x.clone())
        copy_gbs = 2 * x.numel() * 2 / copy_ms / 1e6
        block_m, block_n = fp8_block_sizes(hdim)
        for what, fn, block in (("Q (Hadamard)", lambda: quantize_blocks_cuda(x, block_m, seed=0), block_m),
                                ("K (Hadamard)", lambda: quantize_blocks_cuda(x, block_n, seed=0), block_n),
                                ("V (V^T layout)", lambda: quantize_blocks_cuda(x, block_n, v_layout=True), block_n)):
            ms = graph_ms(fn)
            nbytes = x.numel() * 2 + x.numel() + 4 * x.shape[2] * -(-x.shape[1] // block)
            gbs = nbytes / ms / 1e6
            print(f"{hdim:>4} {what:>22} {ms:>8.4f} {gbs:>8.0f} {copy_gbs:>10.0f} {gbs / copy_gbs:>8.2f}")
            rows.append(dict(impl="fa3-quantize-fp8", mode="quant", what=what, dtype="bf16", hdim=hdim,
                             seqlen_q=16384, batch=1, nheads=2048 // hdim, ms=ms, gb_per_s=gbs,
                             copy_gb_per_s=copy_gbs, gpu=torch.cuda.get_device_name(), date=today(),
                             commit=git_commit()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
