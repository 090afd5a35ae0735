"""Toolchain smoke tests on the GPU: a trivial CuTe kernel and an architecture probe.

They prove the installed extension holds sm_90a device code built with CuTe and that it runs;
`python -m fa3 --smoke` runs both and checks the results.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from ._ext import require_hopper
from ._validation import check_tensor


def scale_2d(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * x computed by the extension's CuTe kernel; x is a 2-D float32 CUDA tensor
    with a contiguous last dim (any row stride)."""
    check_tensor(x, "x", (torch.float32,), ndim=2, layout="(rows, cols)")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a float, got {type(alpha).__name__}")
    if x.shape[1] > 1 and x.stride(1) != 1:
        raise ValueError(f"x must have a contiguous last dim (stride 1), got strides {x.stride()}")
    ext = require_hopper(x.device, "fa3.smoke.scale_2d")
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    with torch.cuda.device(x.device):
        stream = torch.cuda.current_stream().cuda_stream
        ext.scale_2d(x.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], max(x.stride(0), x.shape[1]),
                     y.shape[1], float(alpha), stream)
    return y


def arch_probe(device: Optional[torch.device] = None) -> Tuple[int, bool]:
    """(__CUDA_ARCH__ of the code that ran, whether sm_90a features were compiled in)."""
    device = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    ext = require_hopper(device, "fa3.smoke.arch_probe")
    out = torch.full((2,), -1, dtype=torch.int32, device=device)
    with torch.cuda.device(device):
        ext.arch_probe(out.data_ptr(), torch.cuda.current_stream().cuda_stream)
    arch, sm90a = out.tolist()
    return arch, bool(sm90a)


def run_smoke(device: Optional[torch.device] = None) -> str:
    """Run both smoke kernels on random data and check them; returns a one-line summary."""
    device = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    arch, sm90a = arch_probe(device)
    if arch != 900 or not sm90a:
        raise RuntimeError(f"expected sm_90a device code (__CUDA_ARCH__ 900 with sm_90a features), "
                           f"got __CUDA_ARCH__ {arch}, sm_90a features {sm90a}")
    base = torch.randn(300, 200, device=device)
    x = base[:, 7:140]  # a row stride that is not the width, and partial tiles
    y = scale_2d(x, -1.5)
    torch.cuda.synchronize(device)
    if not torch.equal(y, x * -1.5):
        raise RuntimeError(f"scale_2d kernel gave wrong values: max error {(y - x * -1.5).abs().max().item()}")
    return f"smoke OK on {torch.cuda.get_device_name(device)}: sm_90a code ran, CuTe kernel correct"
