"""fa3: FlashAttention-3-class attention for NVIDIA Hopper (sm_90a).

``fa3.flash_attn_func`` runs the fp16/bf16 forward kernel (Hopper GPU, compiled extension);
``fa3.fp8_attention`` the FP8 one on fp16/bf16 inputs (quantized in one fused pass, with block
scales and Hadamard incoherent processing), ``fa3.quantize_fp8`` / ``fa3.flash_attn_fp8`` the two
halves of it.
Available everywhere: ``fa3.reference`` (FP64 and standard attention), ``fa3.quant`` (e4m3
quantization, Hadamard rotation, the emulated FP8 algorithm) and ``python -m fa3.accuracy``.
GPU kernels need the compiled extension and a Hopper GPU; ``python -m fa3`` tells which
features this machine has.
"""
import warnings

__version__ = "0.1.0"

from . import quant, reference  # noqa: E402
from .flash_attn import flash_attn_func  # noqa: E402
from .fp8 import Fp8QKV, flash_attn_fp8, fp8_attention, fp8_block_sizes, quantize_fp8  # noqa: E402
from ._ext import EXTENSION_ERROR, Features, features, hopper_available, report  # noqa: E402
from .quant import dequantize_e4m3, fp8_attention_emulated, hadamard_rotate, quantize_e4m3  # noqa: E402
from .reference import attention_ref, standard_attention  # noqa: E402

if EXTENSION_ERROR is not None:
    warnings.warn(f"fa3: the CUDA extension could not be loaded ({EXTENSION_ERROR}); the reference, "
                  "quantization and accuracy tools work, the GPU kernels do not. `python -m fa3` says more.",
                  RuntimeWarning, stacklevel=2)

__all__ = ["__version__", "flash_attn_func", "fp8_attention", "quantize_fp8", "flash_attn_fp8", "Fp8QKV",
           "fp8_block_sizes", "attention_ref", "standard_attention", "quantize_e4m3", "dequantize_e4m3",
           "hadamard_rotate", "fp8_attention_emulated", "features", "Features", "hopper_available", "report",
           "quant", "reference"]
