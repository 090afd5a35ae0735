"""Loads the CUDA extension fa3._C and says what this machine can run.

``import fa3`` always works: without the extension (a failed build) the reference,
quantization and accuracy tools still work and the kernels raise a RuntimeError that says
why; without a Hopper GPU the same holds. ``python -m fa3`` prints the report.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Dict, List, Optional

import torch

try:
    _C: Optional[ModuleType] = importlib.import_module(f"{__package__}._C")
    EXTENSION_ERROR: Optional[str] = None
except ImportError as _exc:  # the package is usable without its kernels
    _C = None
    EXTENSION_ERROR = f"{type(_exc).__name__}: {_exc}"

HOPPER_CAPABILITY = (9, 0)  # the extension holds sm_90a code only: it runs on H100/H200 only


def extension() -> ModuleType:
    """The loaded fa3._C module; RuntimeError with the import error when it is missing."""
    if _C is None:
        raise RuntimeError(f"fa3's CUDA extension fa3._C is not available ({EXTENSION_ERROR}). "
                           "Reinstall with `pip install .` on a machine with nvcc (CUDA >= 12.3) "
                           "and read the build log.")
    return _C


@dataclass(frozen=True)
class Features:
    """What this installation and machine can do."""

    extension: bool
    extension_error: Optional[str]
    build: Dict[str, object] = field(default_factory=dict)
    driver_version: int = 0
    devices: List[Dict[str, object]] = field(default_factory=list)
    device_error: str = ""

    @property
    def hopper_devices(self) -> List[int]:
        return [d["index"] for d in self.devices if tuple(d["capability"]) == HOPPER_CAPABILITY]


def features() -> Features:
    """Query the extension's build and the CUDA devices (through the extension, not torch)."""
    if _C is None:
        return Features(extension=False, extension_error=EXTENSION_ERROR)
    count, reason = _C.cuda_device_count()
    devices = [_C.cuda_device_info(i) for i in range(count)]
    return Features(extension=True, extension_error=None, build=_C.build_info(),
                    driver_version=_C.cuda_driver_version(), devices=devices, device_error=reason)


def hopper_available() -> bool:
    """True when the extension is loaded and a Hopper (sm_90) GPU is visible."""
    return bool(features().hopper_devices)


def require_hopper(device: torch.device, what: str = "fa3 kernels") -> ModuleType:
    """Return the extension if ``device`` is a Hopper GPU it can run on; else RuntimeError saying why."""
    ext = extension()
    if device.type != "cuda":
        raise RuntimeError(f"{what} need CUDA tensors on a Hopper GPU, got tensors on {device}")
    index = device.index if device.index is not None else torch.cuda.current_device()
    info = ext.cuda_device_info(index)
    if tuple(info["capability"]) != HOPPER_CAPABILITY:
        major, minor = info["capability"]
        raise RuntimeError(f"{what} need an NVIDIA Hopper GPU (sm_90: H100, H200); "
                           f"cuda:{index} is {info['name']} (sm_{major}{minor})")
    return ext


def report() -> str:
    """A human-readable summary of ``features()``."""
    f = features()
    lines = [f"fa3 {_version()}  torch {torch.__version__}"]
    if not f.extension:
        lines.append(f"extension: NOT LOADED ({f.extension_error})")
        lines.append("available: reference, quantization reference, accuracy checker (emulated rows)")
        lines.append("unavailable: GPU kernels")
        return "\n".join(lines)
    b = f.build
    cuda = b["cuda_runtime_version"]
    lines.append(f"extension: loaded, built for {b['arch']} with CUDA {cuda // 1000}.{cuda % 1000 // 10}, "
                 f"CUTLASS {'.'.join(map(str, b['cutlass_version']))}")
    if f.driver_version:
        lines.append(f"driver: CUDA {f.driver_version // 1000}.{f.driver_version % 1000 // 10}")
    if not f.devices:
        lines.append(f"GPUs: none ({f.device_error})")
    for d in f.devices:
        major, minor = d["capability"]
        tag = "Hopper: kernels available" if tuple(d["capability"]) == HOPPER_CAPABILITY else "not Hopper: kernels unavailable"
        lines.append(f"GPU {d['index']}: {d['name']} (sm_{major}{minor}, {d['sm_count']} SMs) - {tag}")
    if not f.hopper_devices:
        lines.append("unavailable: GPU kernels (no Hopper GPU); the reference, quantization and accuracy tools work")
    return "\n".join(lines)


def _version() -> str:
    from . import __version__
    return __version__
