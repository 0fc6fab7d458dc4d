"""Benchmark harness: w4a16-gemm against cuBLAS fp16 (and fbgemm, gemlite when installed) under the project's
timing protocol (shared/README.md, "v2: decode-step timing"), with the floor measured in the same run.

    python -m w4a16_gemm bench                       # the whole grid (Llama-3 8B/70B layers x 11 token counts)
    python -m w4a16_gemm bench --m 1,16 --models llama3-8b --out results/

Needs torch with CUDA (cuBLAS baseline, CUDA graphs). Per implementation and point (M, N, K):
  * R = min(64, max(4, ceil(256 MiB / weight bytes))) independent weight sets, x and out buffers, so that
    consecutive calls read cold weights;
  * one CUDA graph of the R calls back to back, 3 warm-up replays, >= 10 timed replays each between its own
    events, ~30 ms of idle GPU before each measurement; time per call = median replay / R;
  * floor = max(bytes / copy bandwidth, 2 M N K / cuBLAS peak), with bytes = N K / 2 + N (K/128) 2 + M K 2 + M N 2;
  * correctness first (relative Frobenius error against a float64 reference <= 1e-2, on up to 256 rows);
  * 'latency': one eager call under triton.testing.do_bench (L2 flushed), host launch included;
  * host cost per eager call (Python to launch) of gemm() and torch.matmul at M = 1, 4096 x 4096;
  * impl 'w4a16-nopdl': the same kernels without programmatic dependent launch, for A/B.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

DEFAULT_GRID = {
    "group_size": 128,
    "M": [1, 4, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192],
    "NK": [
        {"model": "llama3-8b", "layer": "qkv_proj", "N": 6144, "K": 4096},
        {"model": "llama3-8b", "layer": "o_proj", "N": 4096, "K": 4096},
        {"model": "llama3-8b", "layer": "gate_up_proj", "N": 28672, "K": 4096},
        {"model": "llama3-8b", "layer": "down_proj", "N": 4096, "K": 14336},
        {"model": "llama3-70b", "layer": "qkv_proj", "N": 10240, "K": 8192},
        {"model": "llama3-70b", "layer": "o_proj", "N": 8192, "K": 8192},
        {"model": "llama3-70b", "layer": "gate_up_proj", "N": 57344, "K": 8192},
        {"model": "llama3-70b", "layer": "down_proj", "N": 8192, "K": 28672},
    ],
}
BUCKETS = [("M 1-16", 1, 16), ("M 32-256", 32, 256), ("M 512-8192", 512, 8192)]
CHECK_ROWS = 256
DEFAULT_IMPLS = "w4a16,cublas,fbgemm,gemlite"  # peers that do not import on a machine are skipped
MAX_REL_ERR = 1e-2


def _geomean(values: list[float]) -> float:
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


class Progress:
    """tqdm when installed, else a one-line counter on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, file=sys.stderr, desc="bench")
            except ImportError:
                pass

    def step(self, label: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(label)
            self._bar.update(1)
        elif self.enabled:
            sys.stderr.write(f"\r[{self.done}/{self.total}] {label:60s}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


class Bench:
    def __init__(self, torch: Any, replays: int = 10, idle_s: float = 0.03) -> None:
        self.torch = torch
        self.replays = replays
        self.idle_s = idle_s
        self.stream = torch.cuda.Stream()

    def _elapsed(self, fn: Callable[[], None], repeats: int) -> list[float]:
        torch = self.torch
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) * 1e-3 for s, e in events]

    def copy_bandwidth(self) -> float:
        torch = self.torch
        n = 1 << 30
        a = torch.empty(n, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        a.random_()
        for _ in range(3):
            b.copy_(a)
        t = statistics.median(self._elapsed(lambda: b.copy_(a), 10))
        a = b = None  # free the 2 GiB before the benchmark proper
        torch.cuda.empty_cache()
        return 2 * n / t

    def matmul_peak(self) -> float:
        torch = self.torch
        n = 8192
        a = torch.randn(n, n, dtype=torch.float16, device="cuda")
        b = torch.randn(n, n, dtype=torch.float16, device="cuda")
        c = torch.empty(n, n, dtype=torch.float16, device="cuda")
        for _ in range(5):
            torch.matmul(a, b, out=c)
        t = statistics.median(self._elapsed(lambda: torch.matmul(a, b, out=c), 20))
        return 2 * n**3 / t

    def graph_time(self, calls: list[Callable[[], None]]) -> tuple[float, bool]:
        """Per-call seconds of the calls captured back to back in one CUDA graph (eager fallback)."""
        torch = self.torch
        s = self.stream
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for fn in calls:  # warm-up on the capture stream: lazy uploads, workspaces, cuBLAS handles
                fn()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=s):
                for fn in calls:
                    fn()
            replay, captured = graph.replay, True
        except Exception:  # noqa: BLE001 - an implementation that cannot be captured is timed eagerly
            torch.cuda.synchronize()
            graph = None

            def replay() -> None:
                for fn in calls:
                    fn()

            captured = False
        for _ in range(3):
            replay()
        torch.cuda.synchronize()
        time.sleep(self.idle_s)
        t = statistics.median(self._elapsed(replay, self.replays))
        del graph
        return t / len(calls), captured

    def latency(self, fn: Callable[[], None]) -> float:
        try:
            from triton.testing import do_bench

            return do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e-3
        except ImportError:
            cache = self.torch.empty(256 << 20, dtype=self.torch.uint8, device="cuda")

            def flushed() -> None:
                cache.zero_()
                fn()

            return statistics.median(self._elapsed(flushed, 20))


def _rel_err(torch: Any, out: Any, ref: Any) -> float:
    out = out.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return float(torch.linalg.norm(out - ref) / torch.linalg.norm(ref).clamp_min(1e-30))


# --------------------------------------------------------------------------------------------------
# Implementations. Each prepare() returns (list of R one-call closures, check() -> relative error).


def _sets(weight_bytes: int) -> int:
    return min(64, max(4, math.ceil((256 << 20) / weight_bytes)))


def _int4_bytes(n: int, k: int, g: int, group_bytes: int) -> int:
    """Bytes of an int4 (k, n) weight with group_bytes of scale (and zero point) per group and column."""
    return n * k // 2 + n * (k // g) * group_bytes


def _random_int4(rng: np.random.Generator, k: int, n: int, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int4 values q (k, n) in [-8, 7] and fp16 group scales s (k / group_size, n): w = q * s."""
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    s = ((rng.random((k // group_size, n)) + 0.5) / (4 * math.sqrt(k))).astype(np.float16)
    return q, s


def _random_weight(rng: np.random.Generator, k: int, n: int, group_size: int):
    import w4a16_gemm as w4

    q, s = _random_int4(rng, k, n, group_size)
    return w4.QuantizedWeight.from_int4(q, s, group_size=group_size)


class W4A16Impl:
    pdl = True  # programmatic dependent launch (the library's default)

    def __init__(self, torch, rng, n, k, g):
        self.torch, self.n, self.k = torch, n, k
        r = _sets(_int4_bytes(n, k, g, 2))
        self.weights = [_random_weight(rng, k, n, g) for _ in range(r)]
        self.reference_w = torch.from_numpy(self.weights[0].dequantize(np.float64)).cuda()

    def calls(self, m, config=None):
        import w4a16_gemm as w4

        torch, r = self.torch, len(self.weights)
        xs = [torch.empty((m, self.k), dtype=torch.float16, device="cuda").uniform_(-1, 1) for _ in range(r)]
        outs = [torch.empty((m, self.n), dtype=torch.float16, device="cuda") for _ in range(r)]
        pdl = self.pdl
        calls = [lambda i=i: w4.gemm(xs[i], self.weights[i], out=outs[i], config=config, pdl=pdl) for i in range(r)]

        def check() -> float:
            rows = min(m, CHECK_ROWS)
            outs[0].fill_(float("nan"))
            calls[0]()
            torch.cuda.synchronize()
            return _rel_err(torch, outs[0][:rows], xs[0][:rows].double() @ self.reference_w)

        return calls, check


class W4A16NoPdlImpl(W4A16Impl):
    """The same kernels launched without PDL: what the overlap of back-to-back calls is worth."""

    pdl = False


class CublasImpl:
    def __init__(self, torch, rng, n, k, g):
        self.torch, self.n, self.k = torch, n, k
        r = _sets(n * k * 2)
        self.weights = [torch.randn((n, k), dtype=torch.float16, device="cuda") / math.sqrt(k) for _ in range(r)]

    def calls(self, m, config=None):
        torch, r = self.torch, len(self.weights)
        xs = [torch.empty((m, self.k), dtype=torch.float16, device="cuda").uniform_(-1, 1) for _ in range(r)]
        outs = [torch.empty((m, self.n), dtype=torch.float16, device="cuda") for _ in range(r)]
        calls = [lambda i=i: torch.matmul(xs[i], self.weights[i].t(), out=outs[i]) for i in range(r)]

        def check() -> float:
            rows = min(m, CHECK_ROWS)
            calls[0]()
            torch.cuda.synchronize()
            return _rel_err(torch, outs[0][:rows], xs[0][:rows].double() @ self.weights[0].double().t())

        return calls, check


class FbgemmImpl:
    """fbgemm-gpu-genai's CUTLASS mixed-input kernel on preshuffled int4 (bf16 activations), fed weights that
    already lie on an int4 grid, so its own quantizer reproduces them."""

    def __init__(self, torch, rng, n, k, g):
        import fbgemm_gpu.experimental.gen_ai  # noqa: F401 - registers torch.ops.fbgemm
        from fbgemm_gpu.experimental.gen_ai.quantize import quantize_int4_preshuffle

        self.torch, self.n, self.k = torch, n, k
        r = _sets(_int4_bytes(n, k, g, 4))  # bf16 scale and zero point
        self.packed = []
        for i in range(r):
            dense = torch.from_numpy(_random_weight(rng, k, n, g).dequantize()).cuda().t().contiguous()
            dense = dense.to(torch.bfloat16)
            self.packed.append(quantize_int4_preshuffle(dense, group_size=g, dtype="bf16", use_zp=True))
            if i == 0:
                self.reference_w = dense.double().t()
            del dense
        self.op = torch.ops.fbgemm.bf16i4bf16_shuffled

    def calls(self, m, config=None):
        torch, r, op, pk = self.torch, len(self.packed), self.op, self.packed
        xs = [torch.empty((m, self.k), dtype=torch.bfloat16, device="cuda").uniform_(-1, 1) for _ in range(r)]
        calls = [lambda i=i: op(xs[i], pk[i][0], pk[i][1][0], pk[i][1][1]) for i in range(r)]

        def check() -> float:
            rows = min(m, CHECK_ROWS)
            out = op(xs[0], pk[0][0], pk[0][1][0], pk[0][1][1])
            torch.cuda.synchronize()
            return _rel_err(torch, out[:rows], xs[0][:rows].double() @ self.reference_w)

        return calls, check


def _hqq_int4(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weights w = q * s in gemlite's HQQ form, w = (W_q - 8) * scales with the integer zero point 8: W_q (n, k)
    uint8 in [0, 15] and scales (n, k / group_size)."""
    return (q.astype(np.int16) + 8).astype(np.uint8).T.copy(), s.T.copy()


class GemliteImpl:
    """gemlite's Triton A16W4 kernels (fp16 activations), fed the same symmetric int4 weights in its HQQ format:
    W_q = q + 8 as uint8, w = (W_q - 8) * s with the zero point 8 as an integer; gemlite picks its kernel per
    batch size with its default configs (no autotune step)."""

    def __init__(self, torch, rng, n, k, g):
        from gemlite import DType, GemLiteLinear

        self.torch, self.n, self.k = torch, n, k
        r = _sets(_int4_bytes(n, k, g, 2))
        self.layers = []
        for i in range(r):
            q, s = _random_int4(rng, k, n, g)
            layer = GemLiteLinear(4, group_size=g, in_features=k, out_features=n, input_dtype=DType.FP16,
                                  output_dtype=DType.FP16)
            w_q, scales = (torch.from_numpy(a).cuda() for a in _hqq_int4(q, s))
            layer.pack(w_q, scales, 8, None)
            self.layers.append(layer)
            if i == 0:
                w = q.astype(np.float64) * np.repeat(s.astype(np.float64), g, axis=0)
                self.reference_w = torch.from_numpy(w).cuda()
                del w
            del w_q, scales

    def calls(self, m, config=None):
        torch, r, layers = self.torch, len(self.layers), self.layers
        xs = [torch.empty((m, self.k), dtype=torch.float16, device="cuda").uniform_(-1, 1) for _ in range(r)]
        calls = [lambda i=i: layers[i](xs[i]) for i in range(r)]

        def check() -> float:
            rows = min(m, CHECK_ROWS)
            out = layers[0](xs[0])
            torch.cuda.synchronize()
            return _rel_err(torch, out[:rows], xs[0][:rows].double() @ self.reference_w)

        return calls, check


IMPLS = {"w4a16": W4A16Impl, "w4a16-nopdl": W4A16NoPdlImpl, "cublas": CublasImpl, "fbgemm": FbgemmImpl,
         "gemlite": GemliteImpl}
PEER_MODULES = {"fbgemm": ("fbgemm_gpu.experimental.gen_ai", "fbgemm-gpu-genai"), "gemlite": ("gemlite", "gemlite")}


def host_overhead(torch: Any, calls: int = 2000) -> dict:
    """Host seconds per eager call (M = 1, 4096 x 4096, out given), w4a16-gemm's gemm() and torch.matmul: the
    Python-to-launch cost that decides whether an eager decode loop is launch-bound. The GPU work per call
    (a few us) is shorter than the host cost, so the launch queue never fills and wall time / calls is the
    host cost."""
    import w4a16_gemm as w4

    rng = np.random.default_rng(1)
    w = _random_weight(rng, 4096, 4096, 128)
    x = torch.empty((1, 4096), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    out = torch.empty((1, 4096), dtype=torch.float16, device="cuda")
    dense = torch.randn((4096, 4096), dtype=torch.float16, device="cuda")
    fns = {"w4a16_gemm.gemm": lambda: w4.gemm(x, w, out=out),
           "torch.matmul": lambda: torch.matmul(x, dense.t(), out=out)}
    result = {}
    for name, fn in fns.items():
        for _ in range(50):
            fn()
        torch.cuda.synchronize()
        per_call = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls // 5):
                fn()
            per_call.append((time.perf_counter() - t0) / (calls // 5))
            torch.cuda.synchronize()
        result[name] = statistics.median(per_call)
    return result


def _available(torch, name: str) -> str | None:
    if name not in IMPLS:
        return f"unknown implementation (known: {', '.join(IMPLS)})"
    if name in PEER_MODULES:
        module, dist = PEER_MODULES[name]
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a peer that does not import is a skipped column, not a failure
            return f"{dist} not importable ({type(exc).__name__}: {str(exc)[:80]})"
    return None


def run(args: argparse.Namespace) -> dict:
    import torch

    import w4a16_gemm as w4

    if not torch.cuda.is_available():
        raise SystemExit("bench: needs a CUDA GPU and torch with CUDA")
    grid = DEFAULT_GRID
    if args.shapes:
        with open(args.shapes, encoding="utf-8") as f:
            grid = json.load(f)
    ms = [int(v) for v in args.m.split(",")] if args.m else grid["M"]
    shapes = [s for s in grid["NK"] if not args.models or s["model"] in args.models.split(",")]
    g = int(args.group_size or grid.get("group_size", 128))
    impls = args.impls.split(",")
    skipped = {}
    for name in list(impls):
        reason = _available(torch, name)
        if reason:
            skipped[name] = reason
            impls.remove(name)
    configs = [None]
    if args.configs != "heuristic":
        globs = ["*"] if args.configs == "all" else [g.strip() for g in args.configs.split(",") if g.strip()]
        configs += [c["name"] for c in w4.list_configs()
                    if not c["zeros"] and any(fnmatch.fnmatch(c["name"], g) for g in globs)]

    bench = Bench(torch, replays=args.replays)
    info = w4.device_info()
    meta = {
        "gpu": torch.cuda.get_device_name(), "driver": info.get("driver_version"), "torch": torch.__version__,
        "w4a16_gemm": w4.__version__, "python": platform.python_version(), "group_size": g,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "protocol": "v2 (decode-step graphs) + v1 latency",
        "skipped": skipped,
    }
    meta["copy_bw_Bps"] = bench.copy_bandwidth()
    meta["peak_flops"] = bench.matmul_peak()
    if "w4a16" in impls:
        meta["host_s_per_call"] = host_overhead(torch)
    rng = np.random.default_rng(args.seed)
    rows = []
    progress = Progress(len(shapes) * len(ms) * (len(impls) + len(configs) - 1), not args.no_progress)
    for shape in shapes:
        n, k = shape["N"], shape["K"]
        prepared, failed = {}, {}
        for impl in impls:  # weights once per shape, reused across every M
            try:
                prepared[impl] = IMPLS[impl](torch, rng, n, k, g)
            except Exception as exc:  # noqa: BLE001 - one failing implementation must not lose the run
                failed[impl] = f"{type(exc).__name__}: {str(exc)[:120]}"
        for m in ms:
            nbytes = n * k / 2 + n * (k / 128) * 2 + m * k * 2 + m * n * 2
            floor = max(nbytes / meta["copy_bw_Bps"], 2 * m * n * k / meta["peak_flops"])
            row = {"model": shape["model"], "layer": shape["layer"], "M": m, "N": n, "K": k, "floor_us": floor * 1e6}
            for impl in impls:
                variants = configs if impl == "w4a16" else [None]
                for config in variants:
                    col = impl if config is None else f"cfg:{config}"
                    row[f"{col}_us"] = None
                    try:
                        if impl in failed:
                            raise RuntimeError(failed[impl])
                        calls, check = prepared[impl].calls(m, config)
                        err = check()
                        row[f"{col}_err"] = err
                        if not err <= MAX_REL_ERR:
                            row[f"{col}_note"] = f"wrong result (rel err {err:.2e})"
                        else:
                            t, captured = bench.graph_time(calls)
                            row[f"{col}_us"] = t * 1e6
                            if not captured:
                                row[f"{col}_note"] = "eager"
                            if config is None and not args.no_latency:
                                row[f"{col}_latency_us"] = bench.latency(calls[0]) * 1e6
                        if impl == "w4a16" and config is None:
                            # What ran on this GPU: the config, and for the decode kernel its tile, split and grid.
                            row["w4a16_config"] = w4.select_config(m, n, k, g, sm_count=0)
                            row["w4a16_launch"] = w4.describe_launch(m, n, k, g, sm_count=0)
                        del calls, check
                    except Exception as exc:  # noqa: BLE001 - one failing point must not lose the run
                        row[f"{col}_note"] = f"{type(exc).__name__}: {str(exc)[:120]}"
                    progress.step(f"{shape['model']} {shape['layer']} M={m} {col}")
            rows.append(row)
        del prepared
        if args.out:  # a checkpoint per shape: a run cut short still leaves its finished shapes
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "bench.partial.json"), "w", encoding="utf-8") as f:
                json.dump({"meta": meta, "rows": rows, "impls": impls}, f)
        torch.cuda.empty_cache()
    progress.close()
    return {"meta": meta, "rows": rows, "impls": impls}


def summarize(result: dict) -> dict:
    rows, impls = result["rows"], result["impls"]
    summary = {}
    for label, lo, hi in BUCKETS:
        sel = [r for r in rows if lo <= r["M"] <= hi]
        if not sel:
            continue
        entry = {}
        for impl in impls:
            ratios = [r[f"{impl}_us"] / r["floor_us"] for r in sel if r.get(f"{impl}_us")]
            speedups = [r["cublas_us"] / r[f"{impl}_us"] for r in sel if r.get(f"{impl}_us") and r.get("cublas_us")]
            entry[impl] = {"time_over_floor": _geomean(ratios), "speedup_vs_cublas": _geomean(speedups),
                           "points": len(ratios)}
            if impl == "w4a16" and sel and ratios:
                worst = max((r for r in sel if r.get("w4a16_us")), key=lambda r: r["w4a16_us"] / r["floor_us"])
                entry[impl]["worst"] = {"M": worst["M"], "N": worst["N"], "K": worst["K"],
                                        "time_over_floor": worst["w4a16_us"] / worst["floor_us"]}
                if "cublas" in impls:
                    low = min((r for r in sel if r.get("w4a16_us") and r.get("cublas_us")),
                              key=lambda r: r["cublas_us"] / r["w4a16_us"])
                    entry[impl]["lowest_speedup"] = {"M": low["M"], "N": low["N"], "K": low["K"],
                                                     "speedup": low["cublas_us"] / low["w4a16_us"]}
        summary[label] = entry
    return summary


def print_table(result: dict, summary: dict, out=sys.stdout) -> None:
    meta, rows, impls = result["meta"], result["rows"], result["impls"]
    out.write(f"# {meta['gpu']} | copy {meta['copy_bw_Bps'] / 1e12:.2f} TB/s | cuBLAS 8192^3 "
              f"{meta['peak_flops'] / 1e12:.0f} TFLOP/s | torch {meta['torch']} | w4a16-gemm {meta['w4a16_gemm']}\n")
    for name, sec in meta.get("host_s_per_call", {}).items():
        out.write(f"# host cost of one eager call (M=1, 4096x4096): {name} {sec * 1e6:.1f} us\n")
    for name, why in meta.get("skipped", {}).items():
        out.write(f"# skipped {name}: {why}\n")
    head = ["M", "N", "K", "floor"] + [f"{i} us" for i in impls] + ["x cuBLAS", "w4a16/floor", "latency us", "config"]
    out.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
    for r in rows:
        cells = [str(r["M"]), str(r["N"]), str(r["K"]), f"{r['floor_us']:.1f}"]
        for i in impls:
            v = r.get(f"{i}_us")
            cells.append(f"{v:.1f}" if v else r.get(f"{i}_note", "-"))
        ours, cub = r.get("w4a16_us"), r.get("cublas_us")
        cells.append(f"{cub / ours:.2f}" if ours and cub else "-")
        cells.append(f"{ours / r['floor_us']:.2f}" if ours else "-")
        lat = r.get("w4a16_latency_us")
        cells.append(f"{lat:.1f}" if lat else "-")
        cells.append(r.get("w4a16_config", "-").replace("w4a16_sm90_", ""))
        out.write("| " + " | ".join(cells) + " |\n")
    out.write("\nGeometric mean of time / floor (speedup vs cuBLAS fp16):\n\n| bucket | " + " | ".join(impls) + " |\n|---|"
              + "---|" * len(impls) + "\n")
    for label, entry in summary.items():
        cells = [f"{entry[i]['time_over_floor']:.2f} ({entry[i]['speedup_vs_cublas']:.2f}x)" if i in entry else "-"
                 for i in impls]
        out.write(f"| {label} | " + " | ".join(cells) + " |\n")


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    by_shape: dict[tuple, list] = {}
    for r in result["rows"]:
        if r.get("w4a16_us") and r.get("cublas_us"):
            by_shape.setdefault((r["model"], r["layer"], r["N"], r["K"]), []).append((r["M"], r["cublas_us"] / r["w4a16_us"]))
    for (model, layer, n, k), pts in by_shape.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{model} {layer} ({n}x{k})")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel("speedup vs cuBLAS fp16 (time ratio)")
    ax.set_title(f"w4a16-gemm vs cuBLAS fp16, {result['meta']['gpu']} (decode-step graphs, cold weights)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m w4a16_gemm bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", help="grid JSON (default: the Llama-3 8B/70B grid of benchmarks/bench_shapes.json)")
    p.add_argument("--m", help="comma-separated token counts (default: the grid's)")
    p.add_argument("--models", help="comma-separated model names to keep, e.g. llama3-8b")
    p.add_argument("--group-size", type=int, help="group size (default: the grid's, 128)")
    p.add_argument("--impls", default=DEFAULT_IMPLS,
                   help="implementations to time; peers that do not import are skipped (default: %(default)s)")
    p.add_argument("--configs", default="heuristic",
                   help="w4a16 configs: 'heuristic' (its choice only), 'all' (also every scale-only config: tuning "
                        "data) or comma-separated name globs, e.g. '*streamk*,*m32*'")
    p.add_argument("--replays", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-latency", action="store_true", help="skip the one-call latency column")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=".", help="folder for bench.json, bench.csv and bench.png")
    args = p.parse_args(argv)
    result = run(args)
    result["summary"] = summarize(result)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    keys = sorted({key for r in result["rows"] for key in r}, key=lambda s: (s not in ("model", "layer", "M", "N", "K"), s))
    with open(os.path.join(args.out, "bench.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(result["rows"])
    try:
        plot(result, os.path.join(args.out, "bench.png"))
    except ImportError:
        sys.stderr.write("bench: matplotlib not installed, no plot\n")
    print_table(result, result["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
