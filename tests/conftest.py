import numpy as np
import pytest

import w4a16_gemm as w4


def _gpu_reason() -> str | None:
    info = w4.device_info()
    return None if info["supported"] else info.get("reason", "no SM90 GPU")


_GPU_REASON = _gpu_reason()


def pytest_collection_modifyitems(config, items):
    if _GPU_REASON is None:
        return
    skip = pytest.mark.skip(reason=f"needs an SM90 GPU: {_GPU_REASON}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request):
    # A fresh, reproducible stream per test: failures print the test id, which fixes the seed.
    seed = abs(hash(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def has_gpu() -> bool:
    return _GPU_REASON is None
