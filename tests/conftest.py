"""Test tiers: CPU tests run everywhere; tests marked `gpu` need the extension and a Hopper GPU
and are skipped, with the reason, where either is missing (e.g. CI)."""
import pytest
import torch


def _gpu_skip_reason():
    import fa3

    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA device"
    f = fa3.features()
    if not f.extension:
        return f"fa3 extension not loaded: {f.extension_error}"
    if not f.hopper_devices:
        return "no Hopper (sm_90) GPU"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gen():
    """A fresh CPU generator per test, seeded from the test's name (reproducible, not all-equal)."""
    import zlib

    def make(name: str = "") -> torch.Generator:
        return torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return make
