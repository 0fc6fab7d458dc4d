"""gemm() and the functions around it: argument checks, device and stream handling, workspaces."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from ._arrays import ArrayView, DeviceArray, device_view, is_device_array
from ._errors import CudaError, NoSM90DeviceError, OutOfMemoryError
from ._native import core
from .quantize import QuantizedWeight

_STATUS_OK = 0
FLAG_NO_PDL = 1  # w4a16.h: W4A16_FLAG_NO_PDL
_STATUS_NO_SM90 = int(core.Status.NO_SM90_DEVICE)
_STATUS_CUDA = int(core.Status.CUDA_ERROR)
_STATUS_WORKSPACE = int(core.Status.INSUFFICIENT_WORKSPACE)

_lock = threading.Lock()
_checked_devices: dict[int, dict] = {}
_workspaces: dict[tuple[int, int], Any] = {}  # (device, stream) -> DeviceBuffer; one per stream, never shared
_retired_workspaces: list[Any] = []  # outgrown workspaces, kept alive for launches that may still use them


def _raise_status(status: int, message: str, what: str) -> None:
    if status == _STATUS_OK:
        return
    name = core.Status(status).name
    text = f"{what}: {message or name}"
    if status == _STATUS_NO_SM90:
        raise NoSM90DeviceError(text)
    if status in (_STATUS_CUDA, _STATUS_WORKSPACE):
        raise CudaError(text)
    raise ValueError(text)


def _allocate(nbytes: int, device: int) -> Any:
    try:
        return core.DeviceBuffer(nbytes, device)
    except RuntimeError as exc:
        if "cudaErrorMemoryAllocation" in str(exc):
            raise OutOfMemoryError(f"out of GPU memory on cuda:{device}: {exc}") from None
        raise CudaError(str(exc)) from None


def device_info(device: int | None = None) -> dict:
    """What w4a16_gemm sees of a GPU: name, SM count, compute capability, driver/runtime versions, and
    whether its kernels can run there ('supported', with 'reason' when not). Never raises for a missing GPU."""
    count, err = core.device_count()
    if count == 0:
        return {"supported": False, "reason": f"no CUDA GPU is visible ({err or 'device count is 0'})",
                "device": None, "library_version": core.library_version()}
    if device is None:
        device = max(core.current_device(), 0)
    if not 0 <= device < count:
        raise ValueError(f"device {device} does not exist ({count} GPU(s) visible)")
    d = core.check_device(device)
    info = {
        "device": device,
        "name": d["name"],
        "sm_count": d["sm_count"],
        "compute_capability": tuple(d["compute_capability"]),
        "driver_version": d["driver_version"],
        "runtime_version": d["runtime_version"],
        "supported": d["status"] == _STATUS_OK,
        "library_version": core.library_version(),
    }
    if d["status"] != _STATUS_OK:
        info["reason"] = d["message"]
    return info


def _require_sm90(device: int) -> dict:
    info = _checked_devices.get(device)
    if info is None:
        count, err = core.device_count()
        if count == 0:
            raise NoSM90DeviceError(f"w4a16_gemm needs an SM90 GPU (H100/H200), but no CUDA GPU is visible: {err}")
        d = core.check_device(device)
        if d["status"] != _STATUS_OK:
            raise NoSM90DeviceError(d["message"])
        info = d
        _checked_devices[device] = info
    return info


def list_configs() -> list[dict]:
    """The kernel configs compiled into this build: name, tile_n x tile_m x tile_k, cluster, schedule, zeros."""
    return core.list_configs()


def select_config(m: int, n: int, k: int, group_size: int = 128, zero_point: bool = False, sm_count: int = 132) -> str:
    """Name of the config the default heuristic picks for a problem (no GPU needed)."""
    status, index, message = core.select_config(m, n, k, group_size, zero_point, sm_count)
    _raise_status(status, message, "select_config")
    return core.list_configs()[index]["name"]


def describe_launch(
    m: int,
    n: int,
    k: int,
    group_size: int = 128,
    zero_point: bool = False,
    config: Any = None,
    sm_count: int = 132,
) -> str:
    """One line on what gemm() launches for a problem: the config (config=None: the heuristic's choice; or a name
    or index), its tiles and grid, and for the decode kernel the plan it derives (kernel, tile, K split, CTAs,
    split-K reduction). No GPU needed: sm_count > 0 assumes an H200's cluster residency scaled to that many SMs;
    sm_count=0 asks the current GPU (NoSM90DeviceError without one)."""
    if isinstance(config, str) and config == "auto":
        raise ValueError("describe_launch takes config None (the heuristic), a config name or an index; 'auto' "
                         "depends on timings: autotune() first, then pass the config it found")
    index = _config_index(config)
    status, text, message = core.describe_launch(m, n, k, group_size, zero_point, index, sm_count)
    _raise_status(status, message, "describe_launch")
    return text


def _resolve_config(config: Any, w: QuantizedWeight) -> int:
    if isinstance(config, str) and config == "auto":
        from .autotune import best_config_index  # noqa: PLC0415 - optional machinery, loaded on demand

        return best_config_index
    return _config_index(config)


def _config_index(config: Any) -> int:
    if config is None:
        return core.CONFIG_AUTO
    if isinstance(config, str):
        index = core.find_config(config)
        if index < 0:
            raise ValueError(f"config {config!r} is not in this build; list_configs() names the available ones")
        return index
    if isinstance(config, (int, np.integer)) and not isinstance(config, bool):
        if not 0 <= int(config) < len(core.list_configs()):
            raise ValueError(f"config index {config} is out of range (this build has {len(core.list_configs())})")
        return int(config)
    raise TypeError(f"config must be None, 'auto', a config name or an index, got {type(config).__name__}")


def _stream_handle(stream: Any, x: Any, device: int) -> int:
    if stream is None:
        module = type(x).__module__.split(".")[0]
        if module == "torch":
            torch = sys.modules["torch"]
            raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # ~10x cheaper than a Stream object
            return int(raw(device)) if raw is not None else int(torch.cuda.current_stream(device).cuda_stream)
        if module == "cupy":
            cupy = sys.modules["cupy"]
            return int(cupy.cuda.get_current_stream().ptr)
        return 0
    if isinstance(stream, (int, np.integer)) and not isinstance(stream, bool):
        return int(stream)
    for attr in ("cuda_stream", "ptr", "handle"):
        if hasattr(stream, attr):
            return int(getattr(stream, attr))
    raise TypeError(f"stream must be an int handle or a stream object (torch/cupy), got {type(stream).__name__}")


class _TorchWorkspace:
    """A workspace taken from torch's allocator during graph capture (then from the graph's private pool, valid
    for as long as we hold it)."""

    def __init__(self, tensor: Any) -> None:
        self.tensor, self.ptr, self.nbytes = tensor, tensor.data_ptr(), tensor.numel()


def _workspace(device: int, stream: int, nbytes: int, x: Any = None) -> tuple[int, int]:
    if nbytes == 0:
        return 0, 0
    key = (device, stream)
    with _lock:
        buf = _workspaces.get(key)
        if buf is None or buf.nbytes < nbytes:
            size = max(nbytes, 1 << 20, 2 * buf.nbytes if buf is not None else 0)
            if buf is not None:
                # Another thread on this stream may hold the old pointer and not have launched yet: freeing it
                # now would hand that launch freed memory. Keep it (growth doubles, so this is bounded).
                _retired_workspaces.append(buf)
            if core.stream_is_capturing(stream):
                # cudaMalloc is illegal while a stream captures. torch's recipe warms up on one stream and captures
                # on another (torch.cuda.graph's own), so a first call on the capture stream is normal: take the
                # memory from torch's allocator, which serves captures from the graph's pool.
                torch = sys.modules.get("torch")
                if torch is None or not isinstance(x, torch.Tensor):
                    raise RuntimeError("gemm needs a workspace on this stream, which cannot be allocated during CUDA "
                                       "graph capture: call gemm once with the same shapes on this stream first")
                buf = _TorchWorkspace(torch.empty(size, dtype=torch.uint8, device=f"cuda:{device}"))
            else:
                buf = _allocate(size, device)
            # Zeroed once, on the stream that will use it: it starts with split-K counters that every call expects
            # at zero and leaves at zero (w4a16.h). (During capture the memset is a node of the graph.)
            try:
                core.memset(buf.ptr, 0, buf.nbytes, stream, device)
            except RuntimeError as exc:
                raise CudaError(f"zero-filling a {buf.nbytes}-byte workspace on cuda:{device}: {exc}") from None
            _workspaces[key] = buf
        return buf.ptr, buf.nbytes


def _check_matrix(view: ArrayView, name: str, rows: int | None, cols: int) -> int:
    """Validates a row-major fp16 matrix view; returns its leading dimension in elements."""
    if view.dtype != "float16":
        raise TypeError(f"{name} must be float16, got {view.dtype}")
    if len(view.shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {view.shape}")
    r, c = view.shape
    if c != cols or (rows is not None and r != rows):
        want = f"({rows}, {cols})" if rows is not None else f"(M, {cols})"
        raise ValueError(f"{name} must have shape {want}, got {view.shape}")
    if r == 0:
        return cols
    if c > 1 and view.strides[1] != 1:
        raise ValueError(f"{name} must be contiguous along its last dimension (stride 1), got strides {view.strides}")
    ld = view.strides[0] if r > 1 else cols
    if ld < cols:
        raise ValueError(f"{name} has row stride {view.strides[0]} < {cols} (negative or overlapping rows)")
    if ld % 8 or view.ptr % 16:
        raise ValueError(f"{name} must be 16-byte aligned with a row stride that is a multiple of 8 elements "
                         f"(got address %16 = {view.ptr % 16}, row stride {ld}); pass a contiguous copy")
    return ld


def _make_output(x: Any, m: int, n: int, device: int) -> tuple[Any, ArrayView]:
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        torch = sys.modules["torch"]
        out = torch.empty((m, n), dtype=torch.float16, device=x.device)
    elif module == "cupy":
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(device):
            out = cupy.empty((m, n), dtype=cupy.float16)
    else:
        out = DeviceArray(_allocate(max(m * n * 2, 16), device), (m, n))
    return out, device_view(out, "out")


def gemm(x: Any, w: QuantizedWeight, bias: Any = None, alpha: float = 1.0, *, out: Any = None,
         stream: Any = None, config: Any = None, pdl: bool = True) -> Any:
    """out[M, N] = alpha * x[M, K] @ w + bias, with x fp16 and w a QuantizedWeight (int4, fp16 scales).

    x may be a numpy array (the result is a new numpy fp16 array, or `out` filled in place) or a GPU array
    (torch, cupy, jax, ... via __cuda_array_interface__ / __dlpack__), read in place; then the result is
    written into `out` if given, else into a new array of x's library (torch/cupy) or a DeviceArray.
    GPU calls are asynchronous on `stream` (default: the current torch/cupy stream of x, else the legacy
    default stream); with `out` given they allocate nothing and can be captured in a CUDA graph.
    config: None (the default heuristic), 'auto' (autotuned, cached), a name or an index from list_configs().
    pdl: launch with programmatic dependent launch (default): the kernel may start while the previous kernel on
    the stream runs and stream its first weights meanwhile; it reads x, bias and writes out only after that
    kernel has finished. Pass False when the kernel right before this call writes w's packed weights in place
    (W4A16_PDL=0 in the environment turns it off everywhere).
    """
    if not isinstance(pdl, bool):
        raise TypeError(f"pdl must be True or False, got {type(pdl).__name__}")
    if not isinstance(w, QuantizedWeight):
        raise TypeError(f"w must be a QuantizedWeight (from quantize() or QuantizedWeight.from_int4()), "
                        f"got {type(w).__name__}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__}")
    alpha = float(alpha)
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    if is_device_array(x):
        return _gemm_device(x, w, bias, alpha, out, stream, config, 0 if pdl else FLAG_NO_PDL)
    if isinstance(x, np.ndarray):
        return _gemm_host(x, w, bias, alpha, out, config)
    raise TypeError(f"x must be a numpy array or a GPU array exposing __dlpack__ or __cuda_array_interface__, "
                    f"got {type(x).__name__}")


def _launch(m: int, n: int, k: int, w: QuantizedWeight, x_ptr: int, ldx: int, bias_ptr: int, alpha: float,
            out_ptr: int, ldo: int, config_arg: Any, device: int, stream: int, flags: int = 0, x: Any = None) -> None:
    packed, scales, zeros = w._on_device(device)
    zeros_ptr = zeros.ptr if zeros is not None else 0
    args = (m, n, k, w.group_size, x_ptr, ldx, packed.ptr, scales.ptr, zeros_ptr, bias_ptr, alpha, out_ptr, ldo)
    config = config_arg(args, device, stream) if callable(config_arg) else config_arg
    status, ws_bytes, message = core.workspace_size(*args, config, device)
    _raise_status(status, message, "gemm")
    ws_ptr, ws_bytes = _workspace(device, stream, ws_bytes, x)
    status, message = core.gemm(*args, config, ws_ptr, ws_bytes, stream, device, flags)
    _raise_status(status, message, "gemm")


def _gemm_device(x: Any, w: QuantizedWeight, bias: Any, alpha: float, out: Any, stream: Any, config: Any,
                 flags: int) -> Any:
    k, n = w.shape
    xv = device_view(x, "x")
    ldx = _check_matrix(xv, "x", None, k)
    m = xv.shape[0]
    device = xv.device
    _require_sm90(device)
    config_arg = _resolve_config(config, w)
    handle = _stream_handle(stream, x, device)
    bias_ptr = 0
    if bias is not None:
        if not is_device_array(bias):
            raise ValueError("bias must be on the same GPU as x (got a host array with a device x)")
        bv = device_view(bias, "bias")
        if bv.dtype != "float16":
            raise TypeError(f"bias must be float16, got {bv.dtype}")
        if bv.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {bv.shape}")
        if n > 1 and bv.strides[0] != 1:
            raise ValueError("bias must be contiguous")
        if bv.device != device:
            raise ValueError(f"bias is on cuda:{bv.device} but x is on cuda:{device}")
        if bv.ptr % 16:
            raise ValueError("bias must be 16-byte aligned; pass a contiguous copy")
        bias_ptr = bv.ptr
    if out is None:
        result, ov = _make_output(x, m, n, device)
    else:
        if not is_device_array(out):
            raise ValueError("out must be on the same GPU as x (got a host array with a device x)")
        result, ov = out, device_view(out, "out")
        if ov.device != device:
            raise ValueError(f"out is on cuda:{ov.device} but x is on cuda:{device}")
    ldo = _check_matrix(ov, "out", m, n)
    if m == 0:
        return result
    if out is not None and _overlaps(ov, m, ldo, n, xv, ldx, k):
        raise ValueError("out overlaps x; the GEMM cannot run in place")
    _launch(m, n, k, w, xv.ptr, ldx, bias_ptr, alpha, ov.ptr, ldo, config_arg, device, handle, flags, x)
    return result


def _overlaps(a: ArrayView, a_rows: int, a_ld: int, a_cols: int, b: ArrayView, b_ld: int, b_cols: int) -> bool:
    a_end = a.ptr + 2 * ((a_rows - 1) * a_ld + a_cols)
    b_end = b.ptr + 2 * ((b.shape[0] - 1) * b_ld + b_cols) if b.shape[0] else b.ptr
    return a.ptr < b_end and b.ptr < a_end


def _gemm_host(x: np.ndarray, w: QuantizedWeight, bias: Any, alpha: float, out: Any, config: Any) -> np.ndarray:
    k, n = w.shape
    if x.dtype != np.float16:
        raise TypeError(f"x must be float16, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D [M, K], got shape {x.shape}")
    if x.shape[1] != k:
        raise ValueError(f"x has K = {x.shape[1]} columns but the weight has K = {k} rows")
    m = x.shape[0]
    bias_host = None
    if bias is not None:
        if is_device_array(bias):
            raise ValueError("bias is a GPU array but x is a host (numpy) array; pass both on the same side")
        bias_host = np.asarray(bias)
        if bias_host.dtype != np.float16:
            raise TypeError(f"bias must be float16, got {bias_host.dtype}")
        if bias_host.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {bias_host.shape}")
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise ValueError("out must be a numpy array when x is a numpy array")
        if out.dtype != np.float16:
            raise TypeError(f"out must be float16, got {out.dtype}")
        if out.shape != (m, n):
            raise ValueError(f"out must have shape ({m}, {n}), got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
    config_arg = _resolve_config(config, w)
    result = out if out is not None else np.empty((m, n), dtype=np.float16)
    if m == 0:
        return result
    device = max(core.current_device(), 0)
    _require_sm90(device)
    x_dev = _allocate(m * k * 2, device)
    x_dev.upload(np.ascontiguousarray(x), 0, 0, False)
    bias_ptr = 0
    if bias_host is not None:
        bias_dev = _allocate(n * 2, device)
        bias_dev.upload(np.ascontiguousarray(bias_host), 0, 0, False)
        bias_ptr = bias_dev.ptr
    out_dev = _allocate(m * n * 2, device)
    _launch(m, n, k, w, x_dev.ptr, k, bias_ptr, alpha, out_dev.ptr, n, config_arg, device, 0)
    host = result if result.flags.c_contiguous else np.empty((m, n), dtype=np.float16)
    out_dev.download(host, 0, 0)
    if host is not result:
        result[...] = host
    return result
