"""w4a16_gemm: fp16 activations x int4 weights GEMM for NVIDIA Hopper (H100/H200, sm_90a).

    import numpy as np, w4a16_gemm as w4
    w = w4.quantize(weight_fp32_KxN, group_size=128)        # int4 + fp16 scales, packed once
    y = w4.gemm(x_fp16_MxK, w, bias=b_fp16_N, alpha=1.0)    # numpy in -> numpy out; torch/cupy/jax in -> GPU out

Importing works without a GPU; running a GEMM there raises NoSM90DeviceError.
"""

from ._errors import CudaError, NoSM90DeviceError, OutOfMemoryError
from ._native import core as _core
from ._arrays import DeviceArray
from .autotune import autotune
from .ops import device_info, gemm, list_configs, select_config
from .quantize import QuantizedWeight, quantize, reference_gemm

__version__ = _core.__version__

__all__ = [
    "CudaError",
    "DeviceArray",
    "NoSM90DeviceError",
    "OutOfMemoryError",
    "QuantizedWeight",
    "__version__",
    "autotune",
    "device_info",
    "gemm",
    "list_configs",
    "quantize",
    "reference_gemm",
    "select_config",
]
