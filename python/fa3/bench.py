"""Attention throughput on this GPU: fa3 against the best peers, in the same process, on the
same inputs.

Default sweep: the FA3 paper's setting, 16k tokens in total (batch = 16384 / seqlen), hidden
2048 (nheads = 2048 / headdim), head dims 64/128/256, seqlen 512..16k, causal and not, bf16.
Peers: torch SDPA with the cuDNN backend and with the flash backend (FlashAttention-2), and
FlashAttention-3's ``flash_attn_interface`` when it is importable. Times are medians of CUDA
event timings after warm-up, taken in rounds that interleave the implementations (so a drift of
the GPU clock with power and heat falls on all of them alike); TFLOP/s use 4·B·H·Sq·Sk·D (halved
when causal).

    python -m fa3.bench --json results.json --plot results.png
    python -m fa3.bench --from-json results.json --plot results.png   # re-table / re-plot, no GPU
    python -m fa3.bench --compare a.json b.json   # fa3 / best peer of two runs side by side, no GPU
    python -m fa3.bench --ablation        # pingpong / intra-warpgroup overlap / stream-K on and off, hdim 128
    python -m fa3.bench --fp8             # FP8: kernel alone and end to end, against cuDNN FP8 (if installed),
                                          # fa3 bf16 and cuDNN bf16
    python -m fa3.bench --bwd             # backward alone (FLOPs = 2.5 x forward), same peers
    python -m fa3.bench --fwd-bwd         # a training step's attention: forward + backward (3.5 x)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from typing import Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import torch

from ._provenance import git_commit, today
from ._timing import attention_flops, time_ms

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
Runner = Callable[[], object]


@dataclass
class BenchRecord:
    """One (implementation, configuration) measurement; keys as DESIGN.md's results schema."""

    impl: str
    mode: str
    dtype: str
    hdim: int
    seqlen_q: int
    seqlen_k: int
    batch: int
    nheads: int
    nheads_kv: int
    causal: bool
    ms: Optional[float]
    tflops: Optional[float]
    gpu: str
    date: str
    commit: Optional[str]
    error: Optional[str] = None  # why a peer could not run this configuration
    ms_rounds: Optional[List[float]] = None  # the median of each round; ms is their median


def _fa3(q, k, v, causal) -> Tuple[Runner, ContextManager]:
    from .flash_attn import flash_attn_func
    return (lambda: flash_attn_func(q, k, v, causal=causal)), contextlib.nullcontext()


def _fa3_fp8(q, k, v, causal, q_residual: bool = False) -> Tuple[Runner, ContextManager]:
    """The FP8 kernel alone, on inputs quantized beforehand (block scales + Hadamard; with
    q_residual, Q as two e4m3 terms: scripts/kernel_time.py's fp8-q-residual, head dim 64 only)."""
    from .fp8 import flash_attn_fp8, quantize_fp8
    qkv = quantize_fp8(q, k, v, q_residual=q_residual)
    return (lambda: flash_attn_fp8(qkv, causal=causal)), contextlib.nullcontext()


def _fa3_fp8_end_to_end(q, k, v, causal) -> Tuple[Runner, ContextManager]:
    """FP8 attention on bf16 inputs: the quantization kernel's three passes and the FP8 kernel."""
    from .fp8 import fp8_attention
    return (lambda: fp8_attention(q, k, v, causal=causal)), contextlib.nullcontext()


# Forward variants for the ablation: (FwdSchedule of hopper/flash_params.h, stream_k). "fa3" is the
# default, which at head dim 128 (non-causal) is fa3-pingpong+overlap (fwd_default_schedule,
# hopper/tile_size.h) with the last wave balanced (hopper/stream_k_plan.h).
ABLATION_VARIANTS = {"fa3-pingpong+overlap": (1, True), "fa3-overlap": (2, True), "fa3-pingpong": (3, True),
                     "fa3-serial": (4, True), "fa3-no-stream-k": (0, False)}


def _fa3_variant(schedule: int, stream_k: bool):
    def prepare(q, k, v, causal) -> Tuple[Runner, ContextManager]:
        from .flash_attn import check_fwd_inputs
        check_fwd_inputs(q, k, v)
        scale = q.shape[-1] ** -0.5
        return (lambda: torch.ops.fa3.fwd(q, k, v, scale, causal, schedule, stream_k)), contextlib.nullcontext()
    return prepare


def _cudnn_fp8(q, k, v, causal) -> Tuple[Runner, ContextManager]:
    """cuDNN's own FP8 attention (per-tensor scales, e4m3 O), inputs quantized beforehand."""
    from .cudnn_fp8 import CudnnFp8Attention
    return CudnnFp8Attention(q, k, v, causal=causal), contextlib.nullcontext()


def _sdpa(backend_name: str):
    def prepare(q, k, v, causal) -> Tuple[Runner, ContextManager]:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))  # SDPA wants (B, H, S, D); same memory
        run = lambda: torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)  # noqa: E731
        return run, sdpa_kernel(getattr(SDPBackend, backend_name))
    return prepare


def _flash_attn_3(q, k, v, causal) -> Tuple[Runner, ContextManager]:
    import flash_attn_interface  # FlashAttention-3's released package, when installed
    return (lambda: flash_attn_interface.flash_attn_func(q, k, v, causal=causal)), contextlib.nullcontext()


def backward_of(prepare: Callable) -> Callable:
    """An impl's backward alone: its forward runs once (in its context, e.g. SDPA's backend
    choice), the runner is the gradient of q, k, v for a fixed dO (the graph is kept)."""
    def prepare_backward(q, k, v, causal) -> Tuple[Runner, ContextManager]:
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
        fn, ctx = prepare(q, k, v, causal)
        with ctx:
            out = fn()
        dout = torch.randn_like(out)
        return (lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)), contextlib.nullcontext()
    return prepare_backward


def forward_backward_of(prepare: Callable) -> Callable:
    """An impl's forward and backward together (a training step's attention): each call runs the
    forward in the impl's context and the gradient of q, k, v for a fixed dO."""
    def prepare_forward_backward(q, k, v, causal) -> Tuple[Runner, ContextManager]:
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
        fn, ctx = prepare(q, k, v, causal)
        with ctx:
            dout = torch.randn_like(fn())
        fn, ctx = prepare(q, k, v, causal)  # a fresh context for the timing (SDPA's is single-use)
        return (lambda: torch.autograd.grad(fn(), (q, k, v), dout)), ctx
    return prepare_forward_backward


PREPARE_FOR_MODE = {"fwd": lambda prepare: prepare, "bwd": backward_of, "fwd+bwd": forward_backward_of}
MODE_NAMES = {"fwd": "forward", "bwd": "backward", "fwd+bwd": "forward + backward"}


def available_impls() -> Dict[str, Callable]:
    impls: Dict[str, Callable] = {"fa3": _fa3, "fa3-fp8": _fa3_fp8, "fa3-fp8-e2e": _fa3_fp8_end_to_end,
                                  "sdpa-cudnn": _sdpa("CUDNN_ATTENTION"), "sdpa-flash": _sdpa("FLASH_ATTENTION")}
    try:
        import flash_attn_interface  # noqa: F401
        impls["flash-attn-3"] = _flash_attn_3
    except ImportError:
        pass
    from .cudnn_fp8 import cudnn_fp8_available
    if cudnn_fp8_available():
        impls["cudnn-fp8"] = _cudnn_fp8
    impls.update({name: _fa3_variant(*variant) for name, variant in ABLATION_VARIANTS.items()})
    return impls


DEFAULT_IMPLS = ("fa3", "sdpa-cudnn", "sdpa-flash", "flash-attn-3")
# --fp8: the FP8 kernel on inputs quantized beforehand, FP8 attention end to end (quantization
# included), cuDNN's own FP8 attention (when nvidia-cudnn-frontend is installed), and the bf16
# kernels of fa3 and cuDNN on the same bf16 inputs.
FP8_IMPLS = ("fa3-fp8", "fa3-fp8-e2e", "cudnn-fp8", "fa3", "sdpa-cudnn")


def is_fp8_impl(name: str) -> bool:
    return "fp8" in name


def paper_configs(hdims: Sequence[int], seqlens: Sequence[int], causals: Sequence[bool], total_tokens: int = 16384,
                  hidden: int = 2048) -> List[Tuple[int, int, int, int, bool]]:
    """(batch, seqlen, nheads, hdim, causal) of the FA3 paper's sweep."""
    out = []
    for hdim in hdims:
        for causal in causals:
            for seqlen in seqlens:
                out.append((max(1, total_tokens // seqlen), seqlen, hidden // hdim, hdim, causal))
    return out


def time_interleaved(runners: Dict[str, Callable[[], float]], rounds: int) -> Dict[str, List[float]]:
    """Times from `rounds` rounds, each calling every runner once; round r starts at the r-th
    runner, and odd rounds go in reverse order, so no implementation is always measured first or
    always right after the same one (a kernel inherits the clock its predecessor left under the
    power cap). A runner that raises is dropped from later rounds and its exception is returned in
    its place."""
    names = list(runners)
    out: Dict[str, list] = {n: [] for n in names}
    failed: Dict[str, Exception] = {}
    for r in range(rounds):
        order = [names[(r + i) % len(names)] for i in range(len(names))]
        for name in order[::-1] if r % 2 else order:
            if name in failed:
                continue
            try:
                out[name].append(runners[name]())
            except Exception as exc:  # a peer without support for this case is reported, not fatal
                failed[name] = exc
    return {n: (failed[n] if n in failed else out[n]) for n in names}


def run(configs: Sequence[Tuple[int, int, int, int, bool]], dtype: str = "bf16",
        impls: Optional[Sequence[str]] = None, progress: bool = True, rounds: int = 3,
        mode: str = "fwd") -> List[BenchRecord]:
    """Time every implementation on every configuration, forward (mode "fwd"), backward alone
    ("bwd") or both ("fwd+bwd"), in `rounds` interleaved rounds of about 100 ms per
    implementation each."""
    from tqdm.auto import tqdm

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if mode not in PREPARE_FOR_MODE:
        raise ValueError(f"mode must be one of {', '.join(PREPARE_FOR_MODE)}, got {mode!r}")
    table = available_impls()
    names = list(impls) if impls else [n for n in DEFAULT_IMPLS if n in table]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown or unavailable impl {unknown[0]!r}; available: {', '.join(table)}")
    device = torch.device("cuda")
    gpu, date, commit = torch.cuda.get_device_name(device), today(), git_commit()
    records: List[BenchRecord] = []
    bar = tqdm(total=len(configs) * len(names) * rounds, desc="bench", disable=not progress, file=sys.stderr)
    for batch, seqlen, nheads, hdim, causal in configs:
        gen = torch.Generator(device=device).manual_seed(seqlen * 1000 + hdim)
        q, k, v = (torch.randn(batch, seqlen, nheads, hdim, device=device, dtype=DTYPES[dtype], generator=gen)
                   for _ in range(3))
        flops = attention_flops(batch, nheads, seqlen, seqlen, hdim, causal, mode)

        def runner(name: str) -> Callable[[], float]:
            def time_once() -> float:
                bar.set_postfix_str(f"{name} hdim {hdim} seqlen {seqlen}{' causal' if causal else ''}")
                bar.update()
                prepare = PREPARE_FOR_MODE[mode](table[name])
                fn, ctx = prepare(q, k, v, causal)  # a fresh context each round (SDPA's is single-use)
                with ctx:
                    return time_ms(fn, min_time_ms=100.0)
            return time_once

        times = time_interleaved({name: runner(name) for name in names}, rounds)
        for name in names:
            got = times[name]
            ms, error, per_round = None, None, None
            if isinstance(got, Exception):
                error = f"{type(got).__name__}: {(str(got).splitlines() or [''])[0][:200]}"
                bar.update(rounds - 1)
            else:
                per_round, ms = got, statistics.median(got)
            records.append(BenchRecord(name, mode, dtype, hdim, seqlen, seqlen, batch, nheads, nheads, causal, ms,
                                       flops / ms / 1e9 if ms else None, gpu, date, commit, error, per_round))
        del q, k, v
    bar.close()
    return records


def _key(r: BenchRecord) -> tuple:
    return (r.hdim, r.causal, r.seqlen_q)


def ratio_to_best_peer(records: Sequence[BenchRecord], impl: str = "fa3") -> Dict[tuple, Optional[float]]:
    """impl's TFLOP/s over the best peer's, per configuration. Peers are the implementations not
    named fa3*; a 16-bit impl is not measured against FP8 peers (cudnn-fp8), an FP8 impl against
    all of them."""
    out: Dict[tuple, Optional[float]] = {}
    for key in dict.fromkeys(_key(r) for r in records):
        rows = [r for r in records if _key(r) == key and r.tflops]
        ours = next((r.tflops for r in rows if r.impl == impl), None)
        peers = [r.tflops for r in rows
                 if not r.impl.startswith("fa3") and (is_fp8_impl(impl) or not is_fp8_impl(r.impl))]
        out[key] = ours / max(peers) if ours and peers else None
    return out


def format_table(records: Sequence[BenchRecord]) -> str:
    """TFLOP/s per configuration and implementation, with fa3's ratio to its best peer (and the
    FP8 kernel's, when it ran)."""
    impls = list(dict.fromkeys(r.impl for r in records))
    ratios = ratio_to_best_peer(records)
    fp8_ratios = ratio_to_best_peer(records, "fa3-fp8") if "fa3-fp8" in impls else None
    header = f"{'hdim':>4} {'causal':>6} {'seqlen':>6} {'batch':>5} " + " ".join(f"{i:>12}" for i in impls) + \
        f" {'fa3/best':>9}" + (f" {'fp8/best':>9}" if fp8_ratios is not None else "")
    what = MODE_NAMES.get(records[0].mode, records[0].mode) if records else ""
    lines = [f"TFLOP/s, {what}, {records[0].dtype}, {records[0].gpu}" if records else "no records", header,
             "-" * len(header)]
    by_key: Dict[tuple, Dict[str, BenchRecord]] = {}
    for r in records:
        by_key.setdefault(_key(r), {})[r.impl] = r
    for key, row in by_key.items():
        first = next(iter(row.values()))
        cells = " ".join(f"{row[i].tflops:>12.1f}" if i in row and row[i].tflops else f"{'n/a':>12}" for i in impls)
        ratio = f"{ratios[key]:>9.3f}" if ratios.get(key) else f"{'-':>9}"
        if fp8_ratios is not None:
            ratio += f" {fp8_ratios[key]:>9.3f}" if fp8_ratios.get(key) else f" {'-':>9}"
        lines.append(f"{first.hdim:>4} {str(first.causal):>6} {first.seqlen_q:>6} {first.batch:>5} {cells} {ratio}")
    errors = sorted({f"{r.impl}: {r.error}" for r in records if r.error})
    lines += [f"n/a: {e}" for e in errors]
    return "\n".join(lines)


def format_comparison(a: Sequence[BenchRecord], b: Sequence[BenchRecord], impl: str = "fa3") -> str:
    """A/B table of two runs (e.g. without and with a patch): per configuration, `impl`'s
    TFLOP/s and its ratio to the best peer in each run, and how that ratio moved. Ratios, not
    raw TFLOP/s, are compared: the GPU's clock drifts between runs."""
    ra, rb = ratio_to_best_peer(a, impl), ratio_to_best_peer(b, impl)
    ours_a = {_key(r): r.tflops for r in a if r.impl == impl}
    ours_b = {_key(r): r.tflops for r in b if r.impl == impl}
    header = (f"{'hdim':>4} {'causal':>6} {'seqlen':>6} {impl + ' A':>10} {impl + ' B':>10} "
              f"{'ratio A':>8} {'ratio B':>8} {'B/A':>7}")
    lines = [f"{impl} / best peer, run A vs run B", header, "-" * len(header)]
    for key in [k for k in ra if k in rb]:
        cells = [f"{v:>10.1f}" if v else f"{'n/a':>10}" for v in (ours_a.get(key), ours_b.get(key))]
        cells += [f"{v:>8.3f}" if v else f"{'n/a':>8}" for v in (ra[key], rb[key])]
        change = f"{rb[key] / ra[key]:>7.3f}" if ra[key] and rb[key] else f"{'-':>7}"
        lines.append(f"{key[0]:>4} {str(key[1]):>6} {key[2]:>6} {' '.join(cells)} {change}")
    return "\n".join(lines)


def plot(records: Sequence[BenchRecord], path: str) -> None:
    """Bar charts like the FA3 paper's: one panel per (causal, head dim), seqlen on x."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib (or fa3[plot])") from exc
    hdims = sorted({r.hdim for r in records})
    causals = sorted({r.causal for r in records})
    impls = list(dict.fromkeys(r.impl for r in records))
    fig, axes = plt.subplots(len(causals), len(hdims), figsize=(5 * len(hdims), 3.6 * len(causals)), squeeze=False)
    width = 0.8 / len(impls)
    for row, causal in enumerate(causals):
        for col, hdim in enumerate(hdims):
            ax = axes[row][col]
            seqlens = sorted({r.seqlen_q for r in records if r.hdim == hdim and r.causal == causal})
            for i, impl in enumerate(impls):
                vals = {r.seqlen_q: r.tflops or 0.0 for r in records
                        if r.impl == impl and r.hdim == hdim and r.causal == causal}
                xs = [j + i * width for j in range(len(seqlens))]
                bars = ax.bar(xs, [vals.get(s, 0.0) for s in seqlens], width, label=impl)
                ax.bar_label(bars, fmt="%.0f", fontsize=6, rotation=90, padding=2)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(seqlens))])
            ax.set_xticklabels([f"{s // 1024}k" if s >= 1024 else str(s) for s in seqlens])
            ax.set_title(f"{'causal' if causal else 'non-causal'}, head dim {hdim}")
            ax.set_xlabel("sequence length")
            ax.set_ylabel("TFLOP/s")
            ax.margins(y=0.15)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(impls), bbox_to_anchor=(0.5, 0.955), fontsize=9)
    first = records[0]
    what = MODE_NAMES.get(first.mode, first.mode)
    fig.suptitle(f"Attention {what}, {first.dtype}, {first.gpu}, {first.date}, commit {first.commit}")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fa3.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hdim", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--seqlen", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192, 16384])
    p.add_argument("--causal", choices=["both", "true", "false"], default="both")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--impl", nargs="+", default=None,
                   help=f"implementations (default: those of {', '.join(DEFAULT_IMPLS)} available here)")
    p.add_argument("--ablation", action="store_true",
                   help="the FA3 paper's ablation: fa3 with and without pingpong and intra-warpgroup overlap, "
                        "and without the last-wave balancing (stream-K), bf16, head dim 128, non-causal, "
                        "against cuDNN")
    p.add_argument("--fp8", action="store_true",
                   help=f"FP8 rows: {', '.join(FP8_IMPLS)} (bf16 inputs; TFLOP/s counted as for bf16)")
    p.add_argument("--bwd", action="store_true",
                   help="time the backward alone (dQ, dK, dV for a fixed dO; FLOPs = 2.5 x forward)")
    p.add_argument("--fwd-bwd", action="store_true",
                   help="time forward and backward together (FLOPs = 3.5 x forward)")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds per configuration, ~100 ms per implementation each (default 3)")
    p.add_argument("--json", metavar="PATH", help="write the records as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart")
    p.add_argument("--from-json", metavar="PATH", help="no measuring: table (and --plot) from a saved --json file")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"),
                   help="no measuring: fa3's ratio to the best peer in two saved --json runs, side by side")
    p.add_argument("--compare-impl", default="fa3", metavar="IMPL",
                   help="the implementation --compare follows (default fa3; fa3-fp8 for the FP8 kernel)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def load_json(path: str) -> List[BenchRecord]:
    with open(path) as f:
        return [BenchRecord(**row) for row in json.load(f)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.compare:
        print(format_comparison(load_json(args.compare[0]), load_json(args.compare[1]), args.compare_impl))
        return 0
    if args.from_json:
        records = load_json(args.from_json)
        print(format_table(records))
        if args.plot:
            plot(records, args.plot)
        return 0
    bad = [d for d in args.hdim if d not in (64, 128, 256)]
    if bad:
        print(f"error: --hdim must be among 64, 128, 256, got {bad[0]}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print(f"error: --rounds must be >= 1, got {args.rounds}", file=sys.stderr)
        return 2
    if any(s < 1 for s in args.seqlen):
        print(f"error: --seqlen values must be >= 1, got {min(args.seqlen)}", file=sys.stderr)
        return 2
    if sum((args.ablation, args.fp8, args.bwd, args.fwd_bwd)) > 1:
        print("error: --ablation, --fp8, --bwd and --fwd-bwd are separate runs; give one", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("error: the benchmark needs a CUDA GPU (fa3's kernels need a Hopper GPU)", file=sys.stderr)
        return 2
    causals = {"both": [False, True], "true": [True], "false": [False]}[args.causal]
    if args.ablation:
        args.hdim, causals, args.dtype = [128], [False], "bf16"
        args.impl = [*ABLATION_VARIANTS, "sdpa-cudnn"]
    if args.fp8:
        args.dtype = "bf16"
        args.impl = args.impl or [n for n in FP8_IMPLS if n in available_impls()]
    try:
        records = run(paper_configs(args.hdim, args.seqlen, causals), args.dtype, args.impl,
                      progress=not args.no_progress, rounds=args.rounds,
                      mode="bwd" if args.bwd else "fwd+bwd" if args.fwd_bwd else "fwd")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(records))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in records], f, indent=2)
    if args.plot:
        plot(records, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
