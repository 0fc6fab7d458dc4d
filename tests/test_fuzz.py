"""Seeded fuzzing of gemm() against the float64 reference (marker `gpu`; skipped without an SM90 GPU).

Each case is a pure function of (seed, index): M in 1..300 (half of them in the decode range 1..16),
N a multiple of 8 up to 2048 (log-uniform), K a multiple of 64 and of the group size g in {64, 128, K},
random zero points / bias / alpha, numpy or torch input, and a random config among the compatible ones of
list_configs() or None (the default heuristic). Outputs the test owns are poisoned with NaN first, so an
element the kernel never writes fails. Pass: every output finite and ||out - ref|| / ||ref|| < 2e-3.

A failure prints one line per case, with its parameters and how to rerun it alone:
    FUZZ FAIL seed=... case=... m=... n=... ... :: <reason> | rerun: python tests/test_fuzz.py --seed S --case I
Environment: W4A16_FUZZ_SEED (default 20261125), W4A16_FUZZ_CASES (default 600).
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import hardening_report as report

REL_TOL = 2e-3
SEED = int(os.environ.get("W4A16_FUZZ_SEED", "20261125"))
N_CASES = int(os.environ.get("W4A16_FUZZ_CASES", "600"))
BATCH = 50
CONFIGS = w4.list_configs()


def fits(config: dict, m: int) -> bool:
    """The decode kernel serves m <= its tile_m only; every other config serves any m."""
    return config.get("schedule") != "decode" or m <= config["tile_m"]


def draw_case(seed: int, index: int) -> dict:
    r = np.random.default_rng([seed, index])
    u = r.random()
    if u < 0.5:
        m = int(r.integers(1, 17))
    elif u < 0.75:
        m = int(r.integers(17, 65))
    else:
        m = int(r.integers(65, 301))
    n = 8 * int(round(math.exp(r.uniform(0.0, math.log(256)))))
    group = str(r.choice(["64", "128", "K"]))
    k_tiles = int(r.integers(1, 33))  # K / 64 in 1..32
    if group == "128":
        k_tiles = min(32, k_tiles + k_tiles % 2)
    k = 64 * k_tiles
    g = k if group == "K" else int(group)
    zeros = bool(r.random() < 0.5)
    bias = bool(r.random() < 0.5)
    v = r.random()
    alpha = 1.0 if v < 0.5 else (round(float(r.uniform(-2.0, 2.0)), 4) if v < 0.85 else float(10 ** r.uniform(-3, 1)))
    if alpha == 0.0:
        alpha = 1.0
    lib = "torch" if r.random() < 0.6 else "numpy"
    out_mode = "poisoned" if r.random() < 0.7 else "new"
    compatible = [c["name"] for c in CONFIGS if bool(c["zeros"]) == zeros and fits(c, m)]
    config = None if (not compatible or r.random() < 0.3) else str(r.choice(compatible))
    return dict(seed=seed, case=index, m=m, n=n, k=k, g=g, zeros=zeros, bias=bias, alpha=alpha, lib=lib,
                out=out_mode, config=config, data_seed=int(r.integers(2**31)))


def describe(c: dict) -> str:
    return (f"seed={c['seed']} case={c['case']} m={c['m']} n={c['n']} k={c['k']} g={c['g']} zeros={c['zeros']} "
            f"bias={c['bias']} alpha={c['alpha']} lib={c['lib']} out={c['out']} config={c['config']}")


def make_inputs(c: dict):
    rng = np.random.default_rng(c["data_seed"])
    k, n, g = c["k"], c["n"], c["g"]
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    s = ((rng.random((k // g, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // g, n)) / np.sqrt(k)).astype(np.float16) if c["zeros"] else None
    w = w4.QuantizedWeight.from_int4(q, s, z, group_size=g)
    x = rng.uniform(-1, 1, size=(c["m"], k)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16) if c["bias"] else None
    return w, x, bias


def launch(c: dict, w, x, bias, torch):
    """Runs the case's gemm; returns a callable giving the host result once the device is synchronised."""
    m, n = c["m"], c["n"]
    kwargs = dict(bias=None, alpha=c["alpha"], config=c["config"])
    if c["lib"] == "numpy":
        kwargs["bias"] = bias
        out = np.full((m, n), np.nan, np.float16) if c["out"] == "poisoned" else None
        y = w4.gemm(x, w, out=out, **kwargs)
        if out is not None:
            assert y is out, "gemm did not return the out it was given"
        return lambda: y
    xt = torch.from_numpy(x).cuda()
    if bias is not None:
        kwargs["bias"] = torch.from_numpy(bias).cuda()
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda") if c["out"] == "poisoned" else None
    y = w4.gemm(xt, w, out=out, **kwargs)
    if out is not None:
        assert y is out, "gemm did not return the out it was given"
    return lambda: y.cpu().numpy()


def check(c: dict, w, x, bias, host) -> str | None:
    host = np.asarray(host)
    if host.shape != (c["m"], c["n"]) or host.dtype != np.float16:
        return f"result has shape {host.shape} dtype {host.dtype}"
    y = host.astype(np.float64)
    bad = np.count_nonzero(~np.isfinite(y))
    if bad:
        return f"{bad} non-finite outputs (never written?)"
    ref = w4.reference_gemm(x, w, bias=bias, alpha=c["alpha"])
    err = float(np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30))
    return None if err < REL_TOL else f"rel_err={err:.3g} >= {REL_TOL}"


def run_cases(indices, seed: int, torch) -> list[str]:
    """Launches every case of the batch, synchronises once, then checks them all; returns failure lines."""
    pending, failures = [], []
    for i in indices:
        c = draw_case(seed, i)
        if c["lib"] == "torch" and torch is None:
            c["lib"] = "numpy"
        try:
            w, x, bias = make_inputs(c)
            pending.append((c, w, x, bias, launch(c, w, x, bias, torch)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reproducer line
            failures.append((c, f"{type(exc).__name__}: {exc}"))
    if torch is not None:
        torch.cuda.synchronize()
    for c, w, x, bias, result in pending:
        try:
            reason = check(c, w, x, bias, result())
        except Exception as exc:  # noqa: BLE001
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            failures.append((c, reason))
    return [f"FUZZ FAIL {describe(c)} :: {reason} | rerun: python tests/test_fuzz.py --seed {c['seed']} "
            f"--case {c['case']}" for c, reason in failures]


def test_case_generator_covers_the_space():
    """Cheap (no GPU): the drawn cases honour the contract and reach every corner the fuzzer promises."""
    cases = [draw_case(SEED, i) for i in range(N_CASES)]
    assert len(cases) >= 500
    for c in cases:
        assert 1 <= c["m"] <= 300 and c["n"] % 8 == 0 and 8 <= c["n"] <= 2048
        assert c["k"] % 64 == 0 and c["k"] % c["g"] == 0 and c["g"] in (64, 128, c["k"]) and c["k"] <= 2048
        if c["config"] is not None:
            config = next(x for x in CONFIGS if x["name"] == c["config"])
            assert config["zeros"] == c["zeros"] and fits(config, c["m"])
    assert sum(c["m"] <= 16 for c in cases) > len(cases) / 3
    assert {c["lib"] for c in cases} == {"numpy", "torch"} and {c["out"] for c in cases} == {"poisoned", "new"}
    assert any(c["config"] is None for c in cases) and any(c["g"] == c["k"] for c in cases)
    assert all(any(c["config"] == x["name"] for c in cases) for x in CONFIGS)


@pytest.mark.gpu
@pytest.mark.parametrize("batch", range(math.ceil(N_CASES / BATCH)))
def test_fuzz_batch(batch):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        torch = None
    indices = range(batch * BATCH, min(N_CASES, (batch + 1) * BATCH))
    start = time.perf_counter()
    lines = run_cases(indices, SEED, torch)
    for line in lines:
        print(line)
    report(f"fuzz_batch {batch}: cases={len(indices)} failures={len(lines)} seconds={time.perf_counter() - start:.1f}")
    for line in lines:
        report(line)
    assert not lines, f"{len(lines)} of {len(indices)} fuzz cases failed:\n" + "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse  # noqa: PLC0415

    ap = argparse.ArgumentParser(description="rerun fuzz cases of tests/test_fuzz.py")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--case", type=int, nargs="+", required=True)
    args = ap.parse_args(argv)
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        torch = None
    for i in args.case:
        print(describe(draw_case(args.seed, i)))
    lines = run_cases(args.case, args.seed, torch)
    print("\n".join(lines) if lines else "all passed")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
