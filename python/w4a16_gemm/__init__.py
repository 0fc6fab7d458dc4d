"""w4a16_gemm: fp16 activations x int4 weights GEMM for NVIDIA Hopper (H100/H200, sm_90a).

    import numpy as np, w4a16_gemm as w4
    w = w4.quantize(weight_fp32_KxN, group_size=128)        # int4 + fp16 scales, packed once
    y = w4.gemm(x_fp16_MxK, w, bias=b_fp16_N, alpha=1.0)    # numpy in -> numpy out; torch/cupy/jax in -> GPU out

Importing works without a GPU; running a GEMM there raises NoSM90DeviceError.
"""

import importlib.util as _importlib_util
import os as _os
import sys as _sys


def _import_torch_first() -> None:
    # Known issue (benchmarks/NOTES.md, 2026-11-25): on the H100 machine (driver 580, torch 2.11+cu130),
    # `import torch` segfaulted inside torch's operator registry when libw4a16_gemm had been loaded before it,
    # with the static and with the shared CUDA runtime alike; torch first was fine every time. Until the cause
    # is found, an installed torch is imported before our library. W4A16_NO_TORCH_PRELOAD=1 skips this.
    if "torch" in _sys.modules or _os.environ.get("W4A16_NO_TORCH_PRELOAD") == "1":
        return
    if _importlib_util.find_spec("torch") is None:
        return
    try:
        import torch  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken torch must not make w4a16_gemm unusable
        pass


_import_torch_first()

from ._errors import CudaError, NoSM90DeviceError, OutOfMemoryError  # noqa: E402
from ._native import core as _core  # noqa: E402
from ._arrays import DeviceArray  # noqa: E402
from .autotune import autotune  # noqa: E402
from .ops import describe_launch, device_info, gemm, list_configs, select_config  # noqa: E402
from .quantize import QuantizedWeight, quantize, reference_gemm  # noqa: E402

__version__ = _core.__version__

__all__ = [
    "CudaError",
    "DeviceArray",
    "NoSM90DeviceError",
    "OutOfMemoryError",
    "QuantizedWeight",
    "__version__",
    "autotune",
    "describe_launch",
    "device_info",
    "gemm",
    "list_configs",
    "quantize",
    "reference_gemm",
    "select_config",
]
