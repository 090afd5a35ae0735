"""FP8 quantization reference: e4m3 with per-tensor or per-block scales, the seeded
Hadamard rotation for incoherent processing, and the emulated FP8 attention algorithm; the fused
GPU quantization kernel (quantize_blocks_cuda) and the FP8 kernel's V layout (to/from_v_layout)."""
from .e4m3 import E4M3_MAX, Fp8Tensor, block_amax, cast_e4m3, dequantize_e4m3, e4m3_residual, quantize_e4m3
from .emulation import fp8_attention_emulated
from .fused import quantize_blocks_cuda
from .hadamard import fwht, hadamard_rotate, hadamard_unrotate, random_signs
from .layout import from_v_layout, to_v_layout

__all__ = ["E4M3_MAX", "Fp8Tensor", "block_amax", "cast_e4m3", "dequantize_e4m3", "e4m3_residual",
           "quantize_e4m3", "fp8_attention_emulated", "fwht", "hadamard_rotate", "hadamard_unrotate", "random_signs",
           "quantize_blocks_cuda", "to_v_layout", "from_v_layout"]
