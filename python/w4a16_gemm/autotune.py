"""Autotuning: time every compatible config once per problem bucket, remember the winner on disk.

gemm(..., config="auto") and autotune() share one cache, keyed by the problem bucket
(M rounded up to a power of two, N, K, group size, zero points) and stored in a JSON file per
(GPU name, driver version, library version), so a driver or library upgrade re-tunes.

Environment:
  W4A16_AUTOTUNE_CACHE=path   where the cache file lives (default ~/.cache/w4a16_gemm/autotune-<gpu>-....json)
  W4A16_AUTOTUNE=0            config="auto" uses the default heuristic and never times anything
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from typing import Any, Iterable

import numpy as np

from ._native import core

_lock = threading.Lock()
_memory: dict[str, dict] = {}  # cache file path -> {bucket key -> entry}


def m_bucket(m: int) -> int:
    """Autotuning bucket of a token count: the next power of two (TensorRT-LLM's profiler uses the same)."""
    return 1 << max(0, int(m) - 1).bit_length()


def enabled() -> bool:
    return os.environ.get("W4A16_AUTOTUNE", "1") not in ("0", "false", "off", "no")


def cache_path(device: int) -> str:
    override = os.environ.get("W4A16_AUTOTUNE_CACHE")
    if override:
        return override
    info = core.check_device(device)
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", info["name"]).strip("-") or "gpu"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "w4a16_gemm",
                        f"autotune-{gpu}-driver{info['driver_version']}-v{core.library_version()}.json")


def _key(m: int, n: int, k: int, group_size: int, zeros: bool) -> str:
    return f"m{m_bucket(m)}_n{n}_k{k}_g{group_size}_{'sz' if zeros else 's'}"


def _load(path: str) -> dict:
    table = _memory.get(path)
    if table is None:
        try:
            with open(path, encoding="utf-8") as f:
                table = json.load(f).get("entries", {})
        except (OSError, ValueError):
            table = {}
        _memory[path] = table
    return table


def _store(path: str, table: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"library_version": core.library_version(), "entries": table}, f, indent=1, sort_keys=True)
        os.replace(tmp, path)  # atomic: concurrent processes never see half a file
    except OSError as exc:  # a read-only home must not break gemm(); the winner stays cached in memory
        sys.stderr.write(f"w4a16_gemm: could not write the autotune cache {path}: {exc}\n")


def _candidates(zeros: bool) -> list[dict]:
    return [c for c in core.list_configs() if c["zeros"] == zeros]


def _progress(total: int, desc: str, enabled_: bool):
    if not enabled_:
        return None
    try:
        from tqdm import tqdm  # optional

        return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
    except ImportError:
        return None


def _tune(args: tuple, device: int, stream: int, progress: bool) -> dict:
    """Times every compatible config on these exact arguments (the output is overwritten, inputs only read)."""
    from .ops import _workspace  # late import: ops imports this module lazily

    zeros = bool(args[8])
    candidates = _candidates(zeros)
    times: dict[str, float] = {}
    bar = _progress(len(candidates) + 1, f"autotune m={args[0]} n={args[1]} k={args[2]}", progress)
    for c in [{"name": "heuristic", "index": core.CONFIG_AUTO}] + candidates:
        status, ws_bytes, _ = core.workspace_size(*args, c["index"], device)
        if status == 0:
            ws_ptr, ws_bytes = _workspace(device, stream, ws_bytes)
            status, ms, _ = core.time_gemm(*args, c["index"], ws_ptr, ws_bytes, stream, device, 2, 10)
            if status == 0:
                times[c["name"]] = ms
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not times:
        raise ValueError("no config in this build can run this problem")
    best = min(times, key=times.get)
    return {"config": best, "times_ms": times}


def best_config_index(args: tuple, device: int, stream: int) -> int:
    """config="auto" inside gemm(): the cached winner for this bucket, tuning it first when unknown."""
    if not enabled() or core.stream_is_capturing(stream):
        return core.CONFIG_AUTO  # never time inside a CUDA graph capture
    m, n, k, group_size, zeros = args[0], args[1], args[2], args[3], bool(args[8])
    path = cache_path(device)
    key = _key(m, n, k, group_size, zeros)
    with _lock:
        entry = _load(path).get(key)
    if entry is None:
        entry = _tune(args, device, stream, progress=True)
        with _lock:
            table = _load(path)
            table[key] = entry
            _store(path, table)
    name = entry["config"]
    if name == "heuristic":
        return core.CONFIG_AUTO
    index = core.find_config(name)
    return index if index >= 0 else core.CONFIG_AUTO


def autotune(w: Any, m: int | Iterable[int], *, bias: bool = False, device: int | None = None,
             progress: bool = True) -> dict[int, str]:
    """Tune config="auto" ahead of time for a QuantizedWeight and token counts `m` (int or iterable) on random
    activations; returns {m bucket: winning config name or 'heuristic'}. Results go to the cache file."""
    from .ops import _allocate, _require_sm90
    from .quantize import QuantizedWeight

    if not isinstance(w, QuantizedWeight):
        raise TypeError(f"w must be a QuantizedWeight, got {type(w).__name__}")
    ms = [m] if isinstance(m, (int, np.integer)) else list(m)
    if not ms or any(int(v) < 1 for v in ms):
        raise ValueError("m must be one or more positive token counts")
    if device is None:
        device = max(core.current_device(), 0)
    _require_sm90(device)
    k, n = w.shape
    packed, scales, zeros = w._on_device(device)
    rng = np.random.default_rng(0)
    result: dict[int, str] = {}
    path = cache_path(device)
    for m_value in sorted({m_bucket(int(v)) for v in ms}):
        x = _allocate(m_value * k * 2, device)
        x.upload(rng.uniform(-1, 1, size=(m_value, k)).astype(np.float16), 0, 0, True)
        out = _allocate(m_value * n * 2, device)
        bias_buf = None
        if bias:
            bias_buf = _allocate(n * 2, device)
            bias_buf.upload(np.zeros(n, np.float16), 0, 0, True)
        args = (m_value, n, k, w.group_size, x.ptr, k, packed.ptr, scales.ptr, zeros.ptr if zeros else 0,
                bias_buf.ptr if bias_buf else 0, 1.0, out.ptr, n)
        entry = _tune(args, device, 0, progress)
        with _lock:
            table = _load(path)
            table[_key(m_value, n, k, w.group_size, zeros is not None)] = entry
            _store(path, table)
        result[m_value] = entry["config"]
    return result
