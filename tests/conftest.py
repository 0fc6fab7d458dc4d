import os
import zlib

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
    # A fresh, reproducible stream per test: failures print the test id, which fixes the seed (crc32, not hash():
    # str hashes change with every interpreter run).
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def has_gpu() -> bool:
    return _GPU_REASON is None


# ---- helpers shared by the GPU test files ------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def make_weight(rng, k, n, group_size, zeros):
    """Random int4 weights with scales sized so that |out| stays O(1) for x in [-1, 1]."""
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    g = k if group_size is None else group_size
    s = ((rng.random((k // g, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // g, n)) / np.sqrt(k)).astype(np.float16) if zeros else None
    return w4.QuantizedWeight.from_int4(q, s, z, group_size=g)


def rel_err(out, ref):
    """||out - ref|| / ||ref||, after checking every output was written (poisoned buffers hold NaN)."""
    out = np.asarray(out, dtype=np.float64)
    assert np.all(np.isfinite(out)), f"{np.count_nonzero(~np.isfinite(out))} non-finite outputs (unwritten?)"
    return np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30)


def hardening_report(line: str) -> None:
    """Appends a result line to $W4A16_HARDENING_REPORT (scripts/hardening_check.sh's summary), if set."""
    path = os.environ.get("W4A16_HARDENING_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line.rstrip() + "\n")
