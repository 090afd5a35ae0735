"""Small forward-kernel calls for compute-sanitizer (memcheck, racecheck): every head dim and
dtype, causal or not, tails on both sequences, GQA, strided inputs; with --fp8, the FP8 path
(quantization kernel and FP8 forward) on seven of them instead, with --bwd the backward (both
modes) on four (separate runs, so that each stays within the device cycle's time limit under
racecheck). Checks values too.

    compute-sanitizer --tool memcheck python3 scripts/sanitizer_cases.py [--fp8 | --bwd]
"""
import sys

import torch

import fa3
from fa3.reference import attention_ref

CASES = [  # (batch, seqlen_q, seqlen_k, nheads, nheads_kv, hdim, causal)
    (1, 1, 1, 1, 1, 64, False), (2, 130, 77, 2, 1, 64, True), (1, 77, 130, 4, 2, 128, True),
    (1, 129, 129, 2, 2, 128, False), (1, 200, 81, 2, 1, 256, False), (1, 81, 200, 2, 2, 256, True),
    # More tiles than SMs (persistent kernels run several per CTA), odd key-tile counts.
    (2, 600, 353, 40, 8, 128, False), (2, 600, 400, 40, 40, 64, False),
    # Not a whole number of waves (200 / 160 tiles on 132 SMs), >= 4 key tiles: the last tiles are
    # cut between CTAs and merged (racecheck: about 6 s per call).
    (1, 600, 800, 40, 8, 128, False), (1, 600, 600, 40, 40, 64, False),
]


def run_fp16_bf16() -> int:
    for b, sq, sk, h, hkv, d, causal in CASES:
        for dtype in (torch.float16, torch.bfloat16):
            q = torch.randn(b, sq, h, d, device="cuda", dtype=dtype)
            kv = torch.randn(b, sk, 2, hkv, d, device="cuda", dtype=dtype)  # k, v as strided slices
            k, v = kv[:, :, 0], kv[:, :, 1]
            out = fa3.flash_attn_func(q, k, v, causal=causal)
            err = (out.double() - attention_ref(q, k, v, causal=causal)).abs().max().item()
            assert err < 2e-2, f"case {(b, sq, sk, h, hkv, d, causal, dtype)}: max error {err}"
    # The ablation schedules (overlap alone, pingpong alone, serial): bf16, hdim 128, non-causal.
    q, k, v = (torch.randn(1, 200, 2, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    ref = attention_ref(q, k, v)
    for schedule in (2, 3, 4):
        out, _ = torch.ops.fa3.fwd(q, k, v, 128 ** -0.5, False, schedule)
        err = (out.double() - ref).abs().max().item()
        assert err < 2e-2, f"schedule {schedule}: max error {err}"
    return len(CASES) * 2 + 3


def run_fp8() -> int:
    """Quantization (Hadamard, V^T layout) and the FP8 kernels (split last-wave tiles too; at head
    dim 64 also with Q's second e4m3 term), against FP64 loosely (e4m3)."""
    cases = [CASES[i] for i in (1, 2, 4, 5, 6, 8, 9)]  # 8, 9: last-wave tiles cut and merged
    calls = 0
    for b, sq, sk, h, hkv, d, causal in cases:
        q = torch.randn(b, sq, h, d, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(b, sk, hkv, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        ref = attention_ref(q, k, v, causal=causal)
        for q_residual in (False, True) if d in fa3.fp8.Q_RESIDUAL_HEAD_DIMS else (False,):
            out = fa3.fp8_attention(q, k, v, causal=causal, q_residual=q_residual)
            err = (out.double() - ref).pow(2).mean().sqrt().item()
            assert err < 5e-2, f"FP8 case {(b, sq, sk, h, hkv, d, causal)}, q_residual={q_residual}: RMSE {err}"
            calls += 1
    return calls


def run_bwd() -> int:
    """The backward (preprocess, main kernel, dQ postprocess), default and deterministic, against
    FP64 gradients loosely."""
    cases = [(CASES[i], deterministic) for i in (0, 1, 2, 3) for deterministic in (False, True)]
    # 34 key tiles (the last one partial), fewer than an H100's 132 SMs: all cut into pieces, 2 at head
    # dim 64 and 3 at 128, ending inside query heads (hopper/bwd_schedule.h). Small enough for racecheck:
    # tests/test_bwd.py's cut shape (165 key tiles) took it past 240 s.
    cases += [((1, 520, 4300, 5, 1, d, False), False) for d in (64, 128)]
    for (b, sq, sk, h, hkv, d, causal), deterministic in cases:
        q = torch.randn(b, sq, h, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k, v = (torch.randn(b, sk, hkv, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                for _ in range(2))
        dout = torch.randn(b, sq, h, d, device="cuda", dtype=torch.bfloat16)
        out = fa3.flash_attn_func(q, k, v, causal=causal, deterministic=deterministic)
        got = torch.autograd.grad(out, (q, k, v), dout)
        qd, kd, vd = (x.detach().double().requires_grad_() for x in (q, k, v))
        ref = torch.autograd.grad(attention_ref(qd, kd, vd, causal=causal), (qd, kd, vd), dout.double())
        for name, g, r in zip("qkv", got, ref):
            err = (g.double() - r).abs().max().item()
            assert err < 5e-2 * max(1.0, r.abs().max().item()), f"bwd case {(b, sq, sk, h, hkv, d, causal)}: d{name} max error {err}"
        # One line per case: under a sanitizer's time limit the log still says which cases finished.
        print(f"bwd case {(b, sq, sk, h, hkv, d, causal)} deterministic={deterministic}: ok", flush=True)
    return len(cases)


def main() -> None:
    torch.manual_seed(0)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    calls = {"--fp8": run_fp8, "--bwd": run_bwd}.get(mode, run_fp16_bf16)()
    torch.cuda.synchronize()
    what = {"--fp8": "FP8 forward", "--bwd": "backward"}.get(mode, "forward")
    print(f"sanitizer cases OK: {calls} {what} calls")


if __name__ == "__main__":
    main()
