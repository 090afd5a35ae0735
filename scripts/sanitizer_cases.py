"""Small forward-kernel calls for compute-sanitizer (memcheck, racecheck): every head dim and
dtype, causal or not, tails on both sequences, GQA, strided inputs; with --fp8, the FP8 path
(quantization kernel and FP8 forward) on five of them instead (a separate run, so that each
stays within the device cycle's time limit under racecheck). Checks values too.

    compute-sanitizer --tool memcheck python3 scripts/sanitizer_cases.py [--fp8]
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
    """Quantization (Hadamard, V^T layout) and the FP8 kernels (split last-wave tiles too), against FP64 loosely (e4m3)."""
    cases = [CASES[i] for i in (1, 2, 4, 5, 6, 8, 9)]  # 8, 9: last-wave tiles cut and merged
    for b, sq, sk, h, hkv, d, causal in cases:
        q = torch.randn(b, sq, h, d, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(b, sk, hkv, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        out = fa3.fp8_attention(q, k, v, causal=causal)
        err = (out.double() - attention_ref(q, k, v, causal=causal)).pow(2).mean().sqrt().item()
        assert err < 5e-2, f"FP8 case {(b, sq, sk, h, hkv, d, causal)}: RMSE {err}"
    return len(cases)


def main() -> None:
    torch.manual_seed(0)
    fp8 = sys.argv[1:] == ["--fp8"]
    calls = run_fp8() if fp8 else run_fp16_bf16()
    torch.cuda.synchronize()
    print(f"sanitizer cases OK: {calls} {'FP8 ' if fp8 else ''}forward calls")


if __name__ == "__main__":
    main()
