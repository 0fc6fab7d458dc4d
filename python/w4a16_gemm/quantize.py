"""Quantization to signed int4 with fp16 group scales, the QuantizedWeight container, and the numpy
float64 reference GEMM.

Conventions (the same everywhere in w4a16-gemm): the weight is [K, N] with y = x @ w; group g runs along
K, so scales and zeros are [K / g, N]; dequantized w[k, n] = q[k, n] * s[k // g, n] (+ z[k // g, n]).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ._arrays import _cuda_array_interface
from ._native import core

SUPPORTED_GROUP_SIZES = (64, 128)
_FP16_MAX = float(np.finfo(np.float16).max)


def _check_problem_dims(k: int, n: int, group_size: int, what: str) -> None:
    if k <= 0 or k % 64:
        raise ValueError(f"{what}: K = {k} must be a positive multiple of 64")
    if n <= 0 or n % 8:
        raise ValueError(f"{what}: N = {n} must be a positive multiple of 8")
    if group_size not in SUPPORTED_GROUP_SIZES and group_size != k:
        raise ValueError(f"{what}: group_size = {group_size} is not supported: use 64, 128, or K = {k} (per-column)")
    if k % group_size:
        raise ValueError(f"{what}: K = {k} is not a multiple of group_size = {group_size}")


def _host_array(a: Any, name: str) -> np.ndarray:
    """A numpy view of a host array; device arrays are refused rather than silently copied."""
    if isinstance(a, np.ndarray):
        return a
    cai, cai_error = _cuda_array_interface(a)  # torch raises RuntimeError/KeyError here for some tensors
    if cai is not None or cai_error is not None:
        raise TypeError(f"{name} must be a host (numpy) array, got a device array; copy it to the host first")
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a type problem for the caller
        raise TypeError(f"{name} must be an array, got {type(a).__name__}") from exc


def _as_fp16(a: Any, name: str, shape: tuple[int, int]) -> np.ndarray:
    arr = _host_array(a, name)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float16 preferred), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.dtype != np.float16:
        if np.any(np.abs(arr[np.isfinite(arr)]) > _FP16_MAX):
            raise ValueError(f"{name} has values beyond the float16 range (|v| > {_FP16_MAX})")
        arr = arr.astype(np.float16)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return np.ascontiguousarray(arr)


class QuantizedWeight:
    """An int4 weight [K, N] with fp16 group scales (and optional zero points), ready for gemm().

    Create it with quantize() or QuantizedWeight.from_int4(). The packed layout is computed once on the
    host; each GPU gets its copy at the first gemm() on it, and every later call reuses it.
    """

    __slots__ = ("_q", "_scales", "_zeros", "_group_size", "_packed", "_device_copies", "_lock", "__weakref__")

    def __init__(self, qvalues: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, group_size: int,
                 *, _validated: bool = False) -> None:
        if not _validated:
            raise TypeError("use QuantizedWeight.from_int4(...) or w4a16_gemm.quantize(...)")
        self._q = qvalues
        self._scales = scales
        self._zeros = zeros
        self._group_size = group_size
        self._packed: np.ndarray | None = None
        self._device_copies: dict[int, tuple] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_int4(cls, qvalues: Any, scales: Any, zeros: Any = None, group_size: int | None = None) -> "QuantizedWeight":
        """Wrap already-quantized weights: qvalues int [K, N] in [-8, 7]; scales [K/g, N]; zeros like scales
        or None; group_size inferred from scales when None."""
        q = _host_array(qvalues, "qvalues")
        if q.dtype.kind not in "iu":
            raise TypeError(f"qvalues must be an integer array (int8), got dtype {q.dtype}")
        if q.ndim != 2:
            raise ValueError(f"qvalues must be 2-D [K, N], got shape {q.shape}")
        k, n = q.shape
        s = _host_array(scales, "scales")
        if s.ndim != 2 or s.shape[1] != n or s.shape[0] == 0:
            raise ValueError(f"scales must have shape [K/group_size, N] = [*, {n}], got {s.shape}")
        if group_size is None:
            if k % s.shape[0]:
                raise ValueError(f"scales has {s.shape[0]} rows, which does not divide K = {k}")
            group_size = k // s.shape[0]
        group_size = int(group_size)
        _check_problem_dims(k, n, group_size, "QuantizedWeight")
        scales16 = _as_fp16(s, "scales", (k // group_size, n))
        zeros16 = None if zeros is None else _as_fp16(zeros, "zeros", (k // group_size, n))
        if q.size and (q.min() < -8 or q.max() > 7):
            bad = np.argwhere((q < -8) | (q > 7))[0]
            raise ValueError(f"qvalues must lie in the int4 range [-8, 7]; qvalues[{bad[0]}, {bad[1]}] = "
                             f"{int(q[tuple(bad)])}")
        q8 = np.ascontiguousarray(q, dtype=np.int8)
        return cls(q8, scales16, zeros16, group_size, _validated=True)

    # --- read-only views -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._q.shape)  # type: ignore[return-value]

    @property
    def group_size(self) -> int:
        return self._group_size

    @property
    def qvalues(self) -> np.ndarray:
        v = self._q.view()
        v.flags.writeable = False
        return v

    @property
    def scales(self) -> np.ndarray:
        v = self._scales.view()
        v.flags.writeable = False
        return v

    @property
    def zeros(self) -> np.ndarray | None:
        if self._zeros is None:
            return None
        v = self._zeros.view()
        v.flags.writeable = False
        return v

    @property
    def packed(self) -> np.ndarray:
        """The packed bytes (N padded to 16, 16x16 blocks in WGMMA fragment order; csrc/weight_layout.hpp)."""
        with self._lock:
            if self._packed is None:
                self._packed = core.pack_weight(self._q)
        return self._packed

    def dequantize(self, dtype: Any = np.float32) -> np.ndarray:
        """[K, N] q * s (+ z) in `dtype` (float32 or float64), from the fp16 scales/zeros the kernels use.

        float64 is exact; float32 can round q * s + z when z is much smaller than q * s."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dequantize dtype must be float32 or float64, got {dtype}")
        g = self._group_size
        s = np.repeat(self._scales.astype(dtype), g, axis=0)
        w = self._q.astype(dtype) * s
        if self._zeros is not None:
            w += np.repeat(self._zeros.astype(dtype), g, axis=0)
        return w

    def __repr__(self) -> str:
        k, n = self.shape
        zp = ", zero points" if self._zeros is not None else ""
        return f"QuantizedWeight(K={k}, N={n}, group_size={self._group_size}{zp})"

    # --- device copies ---------------------------------------------------------------------------
    def _on_device(self, device: int) -> tuple:
        """(packed, scales, zeros-or-None) DeviceBuffers on `device`, uploaded on first use."""
        copies = self._device_copies.get(device)
        if copies is not None:
            return copies
        packed = self.packed
        with self._lock:
            copies = self._device_copies.get(device)
            if copies is None:
                from .ops import _allocate  # late import: ops imports this module

                bufs = []
                for host in (packed, self._scales, self._zeros):
                    if host is None:
                        bufs.append(None)
                        continue
                    buf = _allocate(host.nbytes, device)
                    buf.upload(host, 0, 0, True)
                    bufs.append(buf)
                copies = tuple(bufs)
                self._device_copies[device] = copies
        return copies


def quantize(weight: Any, group_size: int | None = 128, zero_point: bool = False) -> QuantizedWeight:
    """Quantize a float weight [K, N] (y = x @ weight) to int4 with fp16 scales per group of `group_size`
    rows along K (64, 128, or None/K for per-column scales).

    Symmetric (default): s = max|w| / 7, q = round(w / s) in [-7, 7].
    zero_point=True: s = (max - min) / 15, z = min + 8 s, q = round((w - z) / s) in [-8, 7].
    The rounding uses the fp16 scales and zeros that the kernels will see.
    """
    w = _host_array(weight, "weight")
    if w.dtype.kind != "f":
        raise TypeError(f"weight must be a float array, got dtype {w.dtype}")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D [K, N], got shape {w.shape}")
    k, n = w.shape
    if group_size is None:
        group_size = k
    group_size = int(group_size)
    _check_problem_dims(k, n, group_size, "quantize")
    if not np.all(np.isfinite(w)):
        raise ValueError("weight contains NaN or Inf")
    groups = w.astype(np.float32, copy=False).reshape(k // group_size, group_size, n)
    if zero_point:
        lo, hi = groups.min(axis=1), groups.max(axis=1)
        scale = (hi - lo) / 15.0
        scale = np.where(scale > 0, scale, 1.0)
        zero = lo + 8.0 * scale
    else:
        amax = np.abs(groups).max(axis=1)
        scale = np.where(amax > 0, amax / 7.0, 1.0)
        zero = None
    if np.any(scale > _FP16_MAX) or (zero is not None and np.any(np.abs(zero) > _FP16_MAX)):
        raise ValueError("weight magnitudes exceed what float16 scales can represent")
    scale16 = scale.astype(np.float16)
    scale16 = np.where(scale16 == 0, np.float16(np.finfo(np.float16).tiny), scale16)  # underflowed scales
    zero16 = None if zero is None else zero.astype(np.float16)
    centred = groups - (0.0 if zero16 is None else zero16.astype(np.float32)[:, None, :])
    q = np.clip(np.rint(centred / scale16.astype(np.float32)[:, None, :]), -8, 7).astype(np.int8)
    return QuantizedWeight(np.ascontiguousarray(q.reshape(k, n)), scale16, zero16, group_size, _validated=True)


def reference_gemm(x: Any, w: QuantizedWeight, bias: Any = None, alpha: float = 1.0) -> np.ndarray:
    """float64 [M, N] = alpha * x @ w.dequantize() + bias, computed on the host in float64."""
    if not isinstance(w, QuantizedWeight):
        raise TypeError(f"w must be a QuantizedWeight, got {type(w).__name__}")
    xa = _host_array(x, "x")
    if xa.ndim != 2:
        raise ValueError(f"x must be 2-D [M, K], got shape {xa.shape}")
    k, n = w.shape
    if xa.shape[1] != k:
        raise ValueError(f"x has K = {xa.shape[1]} columns but the weight has K = {k} rows")
    out = float(alpha) * (xa.astype(np.float64) @ w.dequantize(np.float64))
    if bias is not None:
        b = _host_array(bias, "bias")
        if b.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {b.shape}")
        out += b.astype(np.float64)
    return out
