"""Exceptions raised by w4a16_gemm.

Bad arguments raise the built-in ValueError / TypeError with a message naming the argument. Problems of
the machine raise subclasses of RuntimeError defined here.
"""


class NoSM90DeviceError(RuntimeError):
    """No CUDA GPU is usable, or the GPU is not compute capability 9.0 (H100/H200)."""


class CudaError(RuntimeError):
    """A CUDA call failed (the message carries the CUDA error name)."""


class OutOfMemoryError(CudaError, MemoryError):
    """cudaMalloc failed for lack of device memory. Nothing was written; the process stays usable."""
