"""The GEMM sweep that scripts/hardening_check.sh runs under compute-sanitizer (memcheck, racecheck, initcheck,
synccheck): every config of list_configs() (config=name) on shapes with a ragged last tile in every
dimension, plus config=None for M = 1..16 and samples of 17..128 (where the default heuristic takes the decode
kernels: mma.sync up to 16, warpgroup MMA with 32-, 64- and 128-token tiles above).

No torch here: the driver only uses numpy and the package's own DeviceBuffers, so that the sanitizer
instruments our kernels and not a framework. Every buffer is allocated to its exact size (memcheck then
catches any access past it) and uploaded in full (initcheck sees no uninitialised data of ours):
  x       rows ldx >= K elements apart; the padding columns hold NaN, so reading them would show;
  out     a view into [guard | M rows of ldo | guard], all NaN before the call; after it the guards and the
          padding columns must still be NaN (bit-exact) and the M x N view must match the float64 reference;
  bias    exactly N halves.
Exit status: 0 when every case matched, 1 otherwise (the sanitizer's own --error-exitcode is separate).
The last line is the machine-readable summary the check script reads:
  SWEEP tool=<tool> cases=<n> failed=<n> configs=<covered>/<total> auto_cases=<n> skipped=<n> seconds=<s>

  python3 scripts/hardening/sanitizer_sweep.py --tool memcheck [--scope full|subset] [--budget-s 120]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

import w4a16_gemm as w4
from w4a16_gemm._native import core

REL_TOL = 2e-3
GUARD = 64  # elements of NaN before and after every output
POISON = np.float16(np.nan)
POISON_BITS = int(np.array([POISON]).view(np.uint16)[0])


class View:
    """A strided fp16 matrix inside a DeviceBuffer, exposed through __cuda_array_interface__."""

    def __init__(self, buf, offset_elems: int, shape: tuple[int, ...], strides_elems: tuple[int, ...]):
        self.buf = buf
        self.__cuda_array_interface__ = {
            "shape": tuple(shape), "typestr": "<f2", "data": (buf.ptr + 2 * offset_elems, False),
            "strides": tuple(2 * s for s in strides_elems), "version": 2,
        }


def upload(host: np.ndarray):
    host = np.ascontiguousarray(host)
    buf = core.DeviceBuffer(host.nbytes, 0)
    buf.upload(host, 0, 0, True)
    return buf


def make_weight(rng, k, n, g, zeros):
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    s = ((rng.random((k // g, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // g, n)) / np.sqrt(k)).astype(np.float16) if zeros else None
    return w4.QuantizedWeight.from_int4(q, s, z, group_size=g)


def run_case(case: dict) -> str | None:
    """None when the case passed, else a one-line reason."""
    m, n, k, g = case["m"], case["n"], case["k"], case["g"]
    rng = np.random.default_rng(case["seed"])
    w = make_weight(rng, k, n, g, case["zeros"])
    x = rng.uniform(-1, 1, size=(m, k)).astype(np.float16)
    ldx, ldo = k + case["ldx_pad"], n + case["ldo_pad"]
    x_pad = np.full((m, ldx), POISON, np.float16)
    x_pad[:, :k] = x
    x_buf = upload(x_pad)
    bias = rng.standard_normal(n).astype(np.float16) if case["bias"] else None
    bias_buf = upload(bias) if bias is not None else None
    out_host = np.full(GUARD + m * ldo + GUARD, POISON, np.float16)
    out_buf = upload(out_host)
    xv = View(x_buf, 0, (m, k), (ldx, 1))
    ov = View(out_buf, GUARD, (m, n), (ldo, 1))
    bv = View(bias_buf, 0, (n,), (1,)) if bias_buf is not None else None
    try:
        w4.gemm(xv, w, bias=bv, alpha=case["alpha"], out=ov, config=case["config"])
        out_buf.download(out_host, 0, 0)  # synchronises the legacy stream the call ran on
    except Exception as exc:  # noqa: BLE001 - any failure is a finding, with its message
        return f"{type(exc).__name__}: {exc}"
    bits = out_host.view(np.uint16)
    body = out_host[GUARD:GUARD + m * ldo].reshape(m, ldo)
    body_bits = bits[GUARD:GUARD + m * ldo].reshape(m, ldo)
    if np.any(bits[:GUARD] != POISON_BITS) or np.any(bits[GUARD + m * ldo:] != POISON_BITS):
        return "wrote into the guard region around out"
    if ldo > n and np.any(body_bits[:, n:] != POISON_BITS):
        return "wrote into the padding columns of out (row stride > N)"
    y = body[:, :n].astype(np.float64)
    if not np.all(np.isfinite(y)):
        return f"{np.count_nonzero(~np.isfinite(y))} non-finite outputs (unwritten, or read padding/NaN)"
    ref = w4.reference_gemm(x, w, bias=bias, alpha=case["alpha"])
    err = np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30)
    if err >= REL_TOL:
        return f"relative error {err:.3g} >= {REL_TOL}"
    return None


def plant(kind: str, config: str | None = None) -> int:
    """A canary for the sanitizer itself: one GEMM whose buffer is deliberately too small (x or out one row short,
    bias 8 elements short) while the array claims the full shape. memcheck must report it; run it in its own
    process (the bad access may also corrupt memory there)."""
    m, n, k, g = 40, 264, 192, 64
    rng = np.random.default_rng(1)
    w = make_weight(rng, k, n, g, False)
    x_rows = m - 1 if kind == "x" else m
    out_rows = m - 1 if kind == "out" else m
    x_buf = upload(rng.uniform(-1, 1, size=(x_rows, k)).astype(np.float16))
    out_buf = upload(np.full(out_rows * n, POISON, np.float16))
    bias_buf = upload(np.zeros(n - 8 if kind == "bias" else n, np.float16))
    xv = View(x_buf, 0, (m, k), (k, 1))
    ov = View(out_buf, 0, (m, n), (n, 1))
    bv = View(bias_buf, 0, (n,), (1,))
    config = config or next(c["name"] for c in w4.list_configs() if not c["zeros"])
    try:
        w4.gemm(xv, w, bias=bv, out=ov, config=config)
        core.stream_synchronize(0)
        print(f"PLANT {kind}: the call returned", flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"PLANT {kind}: {type(exc).__name__}: {exc}", flush=True)
    return 0


def config_cases(cfg: dict, scope: str, seed: int) -> list[dict]:
    """Shapes for one config, ragged in M and N against its tile (K is always a multiple of tile_k = 64,
    so K is 'ragged' against the pipeline instead: fewer k-tiles than stages, odd k-tile counts)."""
    tm, tn = cfg["tile_m"], cfg["tile_n"] * cfg["cluster_n"]
    zeros = bool(cfg["zeros"])
    base = dict(zeros=zeros, config=cfg["name"], ldx_pad=0, ldo_pad=0)
    if cfg.get("schedule") == "decode":  # m <= tile_m only; ragged against its 16-row weight blocks and K split
        cases = [
            dict(base, m=tm, n=1032, k=320, g=64, bias=True, alpha=0.75, ldx_pad=64, ldo_pad=16),
            dict(base, m=1, n=8, k=64, g=64, bias=False, alpha=1.0),
            dict(base, m=37, n=264, k=192, g=64, bias=True, alpha=1.0, ldx_pad=8),  # 64-token tile, odd chunks
        ]
        if scope == "full":
            cases += [
                dict(base, m=tm - 3, n=2056, k=1152, g=128, bias=True, alpha=-0.5),
                dict(base, m=5, n=136, k=4096, g=4096, bias=False, alpha=2.0, ldo_pad=8),
            ]
        for i, c in enumerate(cases):
            c["seed"] = seed + 1000 * cfg["index"] + i
        return cases
    cases = [
        # one ragged tile past a full one in M and N; 3 k-tiles; bias; row strides padded
        dict(base, m=tm + 3, n=2 * tn + 8, k=192, g=64, bias=True, alpha=0.75, ldx_pad=64, ldo_pad=16),
        # the smallest problem: one partial tile, one k-tile, per-column scales
        dict(base, m=1, n=8, k=64, g=64, bias=False, alpha=1.0),
    ]
    if scope == "full":
        cases += [
            dict(base, m=2 * tm - 1, n=max(tn - 8, 8), k=384, g=128, bias=True, alpha=-0.5),
            dict(base, m=3 * tm + 5, n=3 * tn + 24, k=640, g=640, bias=False, alpha=2.0, ldo_pad=8),
        ]
    for i, c in enumerate(cases):
        c["seed"] = seed + 1000 * cfg["index"] + i
    return cases


def auto_cases(scope: str, seed: int, zero_modes: list[bool]) -> list[dict]:
    ms = [*range(1, 17), 17, 24, 32, 33, 64, 65, 100, 128] if scope == "full" else (1, 2, 5, 8, 13, 16, 20, 50, 97)
    shapes = [(136, 320, 64), (1032, 1024, 128), (8, 64, 64), (2056, 512, 512)]
    out = []
    for i, m in enumerate(ms):
        n, k, g = shapes[i % len(shapes)]
        zeros = zero_modes[i % len(zero_modes)]
        out.append(dict(m=m, n=n, k=k, g=g, zeros=zeros, config=None, bias=i % 2 == 0, alpha=1.0 if i % 3 else 0.5,
                        ldx_pad=0 if i % 4 else 64, ldo_pad=0, seed=seed + 77 * m))
    return out


def describe(c: dict) -> str:
    return (f"m={c['m']} n={c['n']} k={c['k']} g={c['g']} zeros={int(c['zeros'])} bias={int(c['bias'])} "
            f"alpha={c['alpha']} ldx=+{c['ldx_pad']} ldo=+{c['ldo_pad']} config={c['config']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", default="none", help="label for the summary line")
    ap.add_argument("--scope", choices=("full", "subset"), default="full")
    ap.add_argument("--budget-s", type=float, default=1e9,
                    help="start no new case after this many seconds (cases are ordered so every config runs first)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--plant", choices=("x", "out", "bias"), help="run only the sanitizer canary of this kind")
    ap.add_argument("--plant-config", help="the canary's config (default: the first scale-only one)")
    args = ap.parse_args()
    if args.plant:
        return plant(args.plant, args.plant_config)

    configs = w4.list_configs()
    per_config = [config_cases(c, args.scope, args.seed) for c in configs]
    zero_modes = sorted({bool(c["zeros"]) for c in configs})
    autos = auto_cases(args.scope, args.seed, zero_modes)
    # Round-robin, so that a budget cut still leaves every config covered: every config's first shape, then
    # half of the config=None cases, then every config's second shape, ..., then the other config=None cases.
    tiers = [[c for c in tier if c is not None] for tier in itertools.zip_longest(*per_config)]
    half = (len(autos) + 1) // 2
    ordered = tiers[0] + autos[:half] + [c for tier in tiers[1:] for c in tier] + autos[half:]

    start = time.perf_counter()
    failed, done, skipped = 0, 0, 0
    covered: set[str] = set()
    auto_done = 0
    for c in ordered:
        if time.perf_counter() - start > args.budget_s:
            skipped += 1
            continue
        t0 = time.perf_counter()
        reason = run_case(c)
        done += 1
        if c["config"] is None:
            auto_done += 1
        else:
            covered.add(c["config"])
        status = "ok  " if reason is None else "FAIL"
        print(f"{status} {time.perf_counter() - t0:6.2f}s {describe(c)}" + ("" if reason is None else f" :: {reason}"),
              flush=True)
        failed += reason is not None
    print(f"SWEEP tool={args.tool} cases={done} failed={failed} configs={len(covered)}/{len(configs)} "
          f"auto_cases={auto_done} skipped={skipped} seconds={time.perf_counter() - start:.1f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
