"""The one timing helper and the one FLOP formula every benchmark uses."""
from __future__ import annotations

import statistics
from typing import Callable

import torch


def attention_flops(batch: int, nheads: int, seqlen_q: int, seqlen_k: int, headdim: int, causal: bool,
                    mode: str = "fwd") -> float:
    """4·B·H·Sq·Sk·D for the forward (two GEMMs), halved when causal; backward = 2.5 x forward."""
    flops = 4.0 * batch * nheads * seqlen_q * seqlen_k * headdim
    if causal:
        flops /= 2
    factor = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}
    if mode not in factor:
        raise ValueError(f"mode must be one of {', '.join(factor)}, got {mode!r}")
    return flops * factor[mode]


def time_ms(fn: Callable[[], object], min_time_ms: float = 300.0, max_reps: int = 500) -> float:
    """Median time of fn() in ms, with CUDA events, after a warm-up; enough repetitions to fill
    ``min_time_ms`` (at least 10)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    probe_start, probe_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    probe_start.record()
    fn()
    probe_end.record()
    torch.cuda.synchronize()
    reps = int(min(max_reps, max(10, min_time_ms / max(probe_start.elapsed_time(probe_end), 1e-3))))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))
