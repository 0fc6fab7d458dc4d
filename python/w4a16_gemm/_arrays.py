"""Reading arrays from other libraries without depending on them, and our own device array.

A device array is anything with __cuda_array_interface__ (torch, cupy, numba) or __dlpack__ (jax, ...).
We read its pointer, shape, strides and device in place; nothing is copied.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np

from ._native import core

_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST, _DLPACK_CUDA_MANAGED = 1, 2, 3, 13
_FLOAT16 = (2, 16, 1)  # DLPack (code, bits, lanes)


@dataclasses.dataclass
class ArrayView:
    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # elements
    dtype: str  # numpy dtype name
    device: int  # CUDA device ordinal
    keepalive: Any = None  # the DLPack capsule, held for the duration of the call


def _dtype_from_dlpack(code: int, bits: int, lanes: int) -> str:
    if lanes != 1:
        return f"vector{lanes}"
    names = {0: "int", 1: "uint", 2: "float", 4: "bfloat"}
    return f"{names.get(code, 'unknown')}{bits}"


def _cuda_array_interface(a: Any) -> tuple[Any, Exception | None]:
    """(a's __cuda_array_interface__ or None, the exception its getter raised or None). torch raises
    RuntimeError or KeyError, not AttributeError, for CUDA tensors it cannot describe (requires_grad,
    float8, ...), so a bare hasattr() would let those escape as the wrong exception type."""
    try:
        return getattr(a, "__cuda_array_interface__", None), None
    except Exception as exc:  # noqa: BLE001 - reported as a TypeError by device_view
        return None, exc


def _torch_cuda_view(a: Any) -> ArrayView | None:
    """The view of a CUDA torch.Tensor straight from its attributes, or None for anything else (then the generic
    protocols decide). torch's __cuda_array_interface__ builds a dict and checks the tensor on every access, and
    a decode step calls gemm once per layer: this path takes ~1 us instead of ~10 (bench: host cost per call).
    Tensors the generic path must judge (requiring grad, on the CPU) are left to it."""
    if not _is_plain_torch_cuda(a):
        return None
    dtype = str(a.dtype).replace("torch.", "")  # numpy's names for the dtypes both have ("float16", ...)
    return ArrayView(a.data_ptr(), tuple(a.shape), tuple(a.stride()), dtype, a.device.index)


def _is_plain_torch_cuda(a: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor) and a.is_cuda and not a.requires_grad


def is_device_array(a: Any) -> bool:
    if isinstance(a, np.ndarray):
        return False
    if _is_plain_torch_cuda(a):
        return True
    cai, cai_error = _cuda_array_interface(a)
    if cai is not None or cai_error is not None:
        return True
    if hasattr(a, "__dlpack_device__"):
        try:
            return a.__dlpack_device__()[0] in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED)
        except Exception:  # noqa: BLE001 - a broken producer is treated as not-a-device-array
            return False
    return False


def device_view(a: Any, name: str, stream: int | None = None) -> ArrayView:
    """Pointer, shape, element strides and device of a device array, read in place."""
    view = _torch_cuda_view(a)
    if view is not None:
        return view
    cai, cai_error = _cuda_array_interface(a)
    if cai is not None:
        typestr = cai["typestr"]
        dtype = np.dtype(typestr)
        shape = tuple(int(s) for s in cai["shape"])
        ptr = int(cai["data"][0]) if cai["data"] else 0
        if cai.get("strides") is None:
            strides, acc = [], 1
            for s in reversed(shape):
                strides.append(acc)
                acc *= s
            strides = tuple(reversed(strides))
        else:
            byte_strides = tuple(int(s) for s in cai["strides"])
            if any(s % dtype.itemsize for s in byte_strides):
                raise ValueError(f"{name} has strides {byte_strides} (bytes) that are not whole elements")
            strides = tuple(s // dtype.itemsize for s in byte_strides)
        mem_type, device = core.pointer_attributes(ptr) if ptr else (2, core.current_device())
        if ptr and mem_type not in (2, 3):
            raise ValueError(f"{name} claims __cuda_array_interface__ but its memory is not on a GPU")
        return ArrayView(ptr, shape, strides, dtype.name, int(device))
    if hasattr(a, "__dlpack__"):
        try:
            try:
                capsule = a.__dlpack__(stream=stream) if stream is not None else a.__dlpack__()
            except TypeError:
                capsule = a.__dlpack__()
        except Exception as exc:  # noqa: BLE001 - e.g. torch refuses tensors that require grad
            raise TypeError(f"{name} cannot be read as a GPU array: {cai_error or exc}") from None
        info = core.dlpack_info(capsule)
        device_type, device = info["device"]
        if device_type not in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
            raise ValueError(f"{name} is on DLPack device type {device_type}, not a CUDA GPU")
        return ArrayView(int(info["ptr"]), tuple(info["shape"]), tuple(info["strides"]),
                         _dtype_from_dlpack(*info["dtype"]), int(device), keepalive=capsule)
    if cai_error is not None:
        raise TypeError(f"{name} cannot be read as a GPU array: {cai_error}") from None
    raise TypeError(f"{name} must be a numpy array or a GPU array exposing __dlpack__ or __cuda_array_interface__, "
                    f"got {type(a).__name__}")


class DeviceArray:
    """A float16 GPU array owned by w4a16_gemm (returned by gemm() for inputs of unknown libraries).

    Hand it to any framework without a copy: torch.from_dlpack(a), cupy.asarray(a), jax.dlpack.from_dlpack(a);
    or bring it to the host with a.numpy().
    """

    def __init__(self, buffer: Any, shape: tuple[int, int]) -> None:
        self._buffer = buffer
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.float16)

    @property
    def device(self) -> int:
        return self._buffer.device

    @property
    def ptr(self) -> int:
        return self._buffer.ptr

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": "<f2", "data": (self._buffer.ptr, False), "strides": None,
                "version": 2}

    def __dlpack__(self, stream: Any = None, **_: Any) -> Any:
        strides, acc = [], 1
        for s in reversed(self.shape):
            strides.append(acc)
            acc *= s
        return core.make_dlpack(self, self._buffer.ptr, list(self.shape), list(reversed(strides)), 2, 16,
                                self._buffer.device)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_DLPACK_CUDA, self._buffer.device)

    def numpy(self) -> np.ndarray:
        host = np.empty(self.shape, dtype=np.float16)
        if host.size:
            self._buffer.download(host, 0, 0)
        return host

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        host = self.numpy()
        return host if dtype is None else host.astype(dtype)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype=float16, device=cuda:{self.device})"
