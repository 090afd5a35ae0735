"""FP8 quantization reference: e4m3 with per-tensor or per-block scales, the seeded
Hadamard rotation for incoherent processing, and the emulated FP8 attention algorithm."""
from .e4m3 import E4M3_MAX, Fp8Tensor, block_amax, cast_e4m3, dequantize_e4m3, quantize_e4m3
from .emulation import fp8_attention_emulated
from .hadamard import fwht, hadamard_rotate, hadamard_unrotate, random_signs

__all__ = ["E4M3_MAX", "Fp8Tensor", "block_amax", "cast_e4m3", "dequantize_e4m3", "quantize_e4m3",
           "fp8_attention_emulated", "fwht", "hadamard_rotate", "hadamard_unrotate", "random_signs"]
