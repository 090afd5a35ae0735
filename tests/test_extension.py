"""The compiled extension fa3._C: built by the install, its C++ checks, and the GPU smoke kernels."""
import pytest
import torch

import fa3
from fa3._ext import extension, require_hopper

requires_extension = pytest.mark.skipif(not fa3.features().extension,
                                        reason=f"extension not built: {fa3.EXTENSION_ERROR}")


def test_extension_was_built_by_the_install():
    # Not skipped on purpose: an install that silently dropped the CUDA build must fail here.
    f = fa3.features()
    assert f.extension, f.extension_error
    assert f.build["arch"] == "sm_90a"
    assert tuple(f.build["cutlass_version"]) >= (3, 8, 0)
    assert f.build["cuda_runtime_version"] >= 12030


@requires_extension
def test_cpp_argument_errors_become_value_errors():
    ext = extension()
    with pytest.raises(ValueError, match=r"^rows must be >= 0, got -1$"):
        ext.scale_2d(0, 0, -1, 4, 4, 4, 1.0, 0)
    with pytest.raises(ValueError, match=r"^ldx must be >= cols \(8\), got 4$"):
        ext.scale_2d(0, 0, 2, 8, 4, 8, 1.0, 0)
    with pytest.raises(ValueError, match=r"^x must not be a null pointer$"):
        ext.scale_2d(0, 16, 2, 8, 8, 8, 1.0, 0)
    count, _ = ext.cuda_device_count()
    with pytest.raises(ValueError, match=rf"^device index must be in \[0, {count}\), got {count}"):
        ext.cuda_device_info(count)
    assert issubclass(ext.CudaError, RuntimeError)


@requires_extension
def test_report_describes_the_machine():
    text = fa3.report()
    assert "extension: loaded, built for sm_90a" in text
    if not fa3.features().devices:
        assert "GPUs: none (" in text and "unavailable: GPU kernels" in text


@requires_extension
def test_require_hopper_explains_cpu_tensors():
    with pytest.raises(RuntimeError, match=r"^fa3 kernels need CUDA tensors on a Hopper GPU, got tensors on cpu$"):
        require_hopper(torch.device("cpu"))


def test_smoke_validation_runs_before_any_gpu_work():
    from fa3.smoke import scale_2d

    with pytest.raises(TypeError, match=r"^x has dtype torch.float16; allowed: torch.float32$"):
        scale_2d(torch.zeros(2, 2, dtype=torch.float16), 1.0)
    with pytest.raises(ValueError, match=r"^x must be a 2-D tensor \(rows, cols\), got shape \(2,\)$"):
        scale_2d(torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"^x must have a contiguous last dim \(stride 1\), got strides \(1, 3\)$"):
        scale_2d(torch.zeros(3, 3).t(), 1.0)


@pytest.mark.gpu
def test_arch_probe_runs_sm90a_code():
    from fa3.smoke import arch_probe

    assert arch_probe() == (900, True)


@pytest.mark.gpu
@pytest.mark.parametrize("rows,cols,col0", [(1, 1, 0), (33, 65, 3), (300, 133, 7), (1000, 64, 0)])
def test_cute_scale_kernel_on_strided_inputs(rows, cols, col0):
    from fa3.smoke import scale_2d

    base = torch.randn(rows, cols + col0 + 5, device="cuda")
    x = base[:, col0:col0 + cols]
    y = scale_2d(x, 0.75)
    assert torch.equal(y, x * 0.75)


@pytest.mark.gpu
def test_smoke_summary():
    from fa3.smoke import run_smoke

    assert run_smoke().startswith("smoke OK on ")


def test_require_hopper_names_a_non_hopper_gpu(monkeypatch):
    """A GPU that is not sm_90 is refused with its name and architecture (checked with a stand-in
    extension, so the message is tested on machines without such a GPU)."""
    import fa3._ext as ext_mod

    class FakeExtension:
        @staticmethod
        def cuda_device_info(index):
            return {"index": index, "name": "NVIDIA A100-SXM4-80GB", "capability": (8, 0)}

    monkeypatch.setattr(ext_mod, "_C", FakeExtension)
    with pytest.raises(RuntimeError) as info:
        require_hopper(torch.device("cuda", 0))
    assert str(info.value) == ("fa3 kernels need an NVIDIA Hopper GPU (sm_90: H100, H200); "
                               "cuda:0 is NVIDIA A100-SXM4-80GB (sm_80)")


@requires_extension
def test_bwd_workspace_rounds_rows_to_the_kernels_query_tile():
    # dQ's fp32 accumulator, LSE and D per padded row (each array 256-byte aligned), and one turn
    # counter per query tile; the backward's query tile is 128 rows at head dim 64, 80 at head dim
    # 128 without the causal mask, 64 with it (hopper/bwd_tile_size.h).
    def aligned(nbytes):
        return (nbytes + 255) // 256 * 256

    def expected(rows, hdim, tiles):
        return aligned(rows * hdim * 4) + 2 * aligned(rows * 4) + aligned(tiles * 4)
    ext = extension()
    assert ext.bwd_workspace_bytes(1, 60, 60, 1, 1, 64, False, False, 132) == expected(128, 64, 1)
    assert ext.bwd_workspace_bytes(1, 60, 60, 1, 1, 64, True, False, 132) == expected(128, 64, 1)
    assert ext.bwd_workspace_bytes(1, 200, 200, 1, 1, 128, False, False, 132) == expected(240, 128, 3)
    assert ext.bwd_workspace_bytes(1, 200, 200, 1, 1, 128, True, False, 132) == expected(256, 128, 4)
