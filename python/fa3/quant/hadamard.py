"""Incoherent processing: a random orthogonal rotation along the head dim.

M = H diag(s) / sqrt(d), with H the d x d Walsh-Hadamard matrix (Sylvester order) and s
random signs drawn from ``seed``. Q and K are both multiplied by M on the right:
(QM)(KM)^T = Q M M^T K^T = QK^T exactly, while an outlier in one coordinate is spread over
all d coordinates, which shrinks amax and with it the FP8 quantization step. V is not rotated.

The transform is the fast Walsh-Hadamard butterfly: log2(d) stages of (a + b, a - b), so
O(d log d) per row and no d x d matrix.
"""
from __future__ import annotations

import math
from typing import Union

import torch

from .._validation import check_power_of_two, check_tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    return seed


def random_signs(dim: int, seed: int, device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """d random +-1 values (float32) drawn on the CPU from ``seed``: the same on every machine."""
    check_power_of_two(dim, "dim")
    generator = torch.Generator(device="cpu").manual_seed(_check_seed(seed))
    bits = torch.randint(0, 2, (dim,), generator=generator)
    return (1.0 - 2.0 * bits.to(torch.float32)).to(device)


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalized Walsh-Hadamard transform along the last dim: x @ H (H symmetric, H H = d I)."""
    check_tensor(x, "x", _FLOAT_DTYPES)
    d = x.shape[-1]
    check_power_of_two(d, "the last dim of x (head dim)")
    y = x.reshape(-1, d)
    h = 1
    while h < d:
        # Pair element i with i + h inside each block of 2h: one butterfly stage.
        pairs = y.view(-1, d // (2 * h), 2, h)
        a, b = pairs[:, :, 0, :], pairs[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2).view(-1, d)
        h *= 2
    return y.view(x.shape)


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def rotation_multipliers(dim: int, seed: int, device: Union[str, torch.device] = "cpu",
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """diag(s) / sqrt(d) as a vector: the random signs times 1/sqrt(d) rounded once to `dtype`.
    Sign flips of one rounded constant, so the values are the same on every device (a tensor
    divided by a Python float is not: CUDA multiplies by a reciprocal). The fused quantization
    kernel takes this very vector."""
    inv_sqrt = torch.tensor(1.0 / math.sqrt(dim), dtype=dtype)
    return (random_signs(dim, seed).to(dtype) * inv_sqrt).to(device)


def hadamard_rotate(x: torch.Tensor, seed: int) -> torch.Tensor:
    """x @ M along the last (head) dim, in float32 (float64 for float64 input)."""
    check_tensor(x, "x", _FLOAT_DTYPES)
    d = x.shape[-1]
    check_power_of_two(d, "the last dim of x (head dim)")
    return fwht(x.to(_work_dtype(x))) * rotation_multipliers(d, seed, x.device, _work_dtype(x))


def hadamard_unrotate(y: torch.Tensor, seed: int) -> torch.Tensor:
    """y @ M^T: the inverse of ``hadamard_rotate`` with the same seed."""
    check_tensor(y, "y", _FLOAT_DTYPES)
    d = y.shape[-1]
    check_power_of_two(d, "the last dim of y (head dim)")
    return fwht(y.to(_work_dtype(y)) * rotation_multipliers(d, seed, y.device, _work_dtype(y)))
