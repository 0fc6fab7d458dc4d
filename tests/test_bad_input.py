"""Bad input to every public function and the CLI: a clear exception (or exit 2 with one line), or a correct
result where the input is in fact valid; nothing crashes and nothing is written past its buffer.

CASES below is the table of docs/bad_input.md, one entry per row (test_docs_mirror_the_table keeps the two
in step; `python tests/test_bad_input.py` prints the table). Rows that need the GPU carry the `gpu` marker
(skipped without an SM90 GPU), rows about a machine without one run only there, and the no-GPU path is
also run on GPU machines in a subprocess with CUDA_VISIBLE_DEVICES="".
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys
from typing import Any, Callable

import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import has_gpu
from w4a16_gemm import _cli

K, N, M, G = 128, 16, 4, 64
REL_TOL = 2e-3
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "bad_input.md")


# ---- the table ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    id: str
    func: str
    input: str
    fn: Callable[["Env"], Any]
    exc: Any = None  # exception type(s) expected, or None: fn checks a valid result itself
    match: str | None = None
    behaviour: str = ""  # for valid inputs and machine-dependent rows
    where: str = "any"  # any | gpu | multi_gpu | no_gpu

    def describe(self) -> str:
        if self.behaviour:
            return self.behaviour
        names = "/".join(e.__name__ for e in (self.exc if isinstance(self.exc, tuple) else (self.exc,)))
        pattern = self.match.replace("\\", "") if self.match else ""
        return f"{names}: `{pattern}`" if pattern else names


CASES: list[Case] = []


def case(id, func, input, exc=None, match=None, behaviour="", where="any"):
    def register(fn):
        CASES.append(Case(id, func, input, fn, exc, match, behaviour, where))
        return fn
    return register


def bad(id, func, input, exc, match, where="any"):
    """A row whose call must raise exc with a message matching `match`; fn is given inline."""
    def register(fn):
        CASES.append(Case(id, func, input, fn, exc, match, "", where))
        return fn
    return register


class Env:
    """Small valid inputs every case starts from: x [4, 128] fp16, w [128, 16] (g = 64), wz with zero points."""

    def __init__(self, rng):
        self.rng = rng
        self.weight = rng.standard_normal((K, N)).astype(np.float32)
        self.w = w4.quantize(self.weight, group_size=G)
        q = rng.integers(-8, 8, size=(K, N), dtype=np.int8)
        self.q = q
        self.s = ((rng.random((K // G, N)) + 0.5) / 40).astype(np.float16)
        self.z = (rng.standard_normal((K // G, N)) / 10).astype(np.float16)
        self.wz = w4.QuantizedWeight.from_int4(q, self.s, self.z, group_size=G)
        self.x = rng.uniform(-1, 1, size=(M, K)).astype(np.float16)
        self.bias = rng.standard_normal(N).astype(np.float16)

    @functools.cached_property
    def torch(self):
        return pytest.importorskip("torch")

    @property
    def xt(self):
        return self.torch.from_numpy(self.x).cuda()

    def nan(self, *shape, device="cuda"):
        return self.torch.full(shape, float("nan"), dtype=self.torch.float16, device=device)

    def config(self, zeros: bool) -> str:
        return next(c["name"] for c in w4.list_configs() if bool(c["zeros"]) == zeros)

    @staticmethod
    def close(y, ref):
        y = np.asarray(y, dtype=np.float64)
        assert np.all(np.isfinite(y)), f"{np.count_nonzero(~np.isfinite(y))} non-finite outputs"
        err = np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30)
        assert err < REL_TOL, f"relative error {err:.3g}"


class CAIView:
    """A raw __cuda_array_interface__ over another array's memory (for layouts torch cannot make)."""

    def __init__(self, owner, ptr, shape, strides_bytes, typestr="<f2"):
        self.owner = owner
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": typestr, "data": (ptr, False),
                                         "strides": tuple(strides_bytes), "version": 2}


def w4_same(a, b):
    assert np.array_equal(a.qvalues, b.qvalues) and np.array_equal(a.scales, b.scales)
    assert (a.zeros is None and b.zeros is None) or np.array_equal(a.zeros, b.zeros)


def cli(*args, env=None):
    return subprocess.run([_cli.executable_path(), *args], capture_output=True, text=True, timeout=120, env=env)


def assert_cli_usage_error(r, match):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("w4a16_only_test: ") and re.search(match, lines[0]), r.stderr


# ---- quantize ----
bad("quantize-int-dtype", "quantize", "weight int32 [128, 16]", TypeError, "weight must be a float array")(
    lambda e: w4.quantize(np.ones((K, N), np.int32)))
bad("quantize-str-dtype", "quantize", "weight = nested list of str", TypeError, "weight must be a float array")(
    lambda e: w4.quantize([["a"] * N] * K))
bad("quantize-rank-1", "quantize", "weight 1-D [2048]", ValueError, "weight must be 2-D")(
    lambda e: w4.quantize(np.ones(K * N, np.float32)))
bad("quantize-rank-3", "quantize", "weight 3-D [2, 128, 16]", ValueError, "weight must be 2-D")(
    lambda e: w4.quantize(np.ones((2, K, N), np.float32)))
bad("quantize-n-not-8", "quantize", "weight [128, 12] (N % 8 != 0)", ValueError, "N = 12 must be a positive multiple of 8")(
    lambda e: w4.quantize(np.ones((K, 12), np.float32)))
bad("quantize-k-not-64", "quantize", "weight [100, 16] (K % 64 != 0)", ValueError, "K = 100 must be a positive multiple of 64")(
    lambda e: w4.quantize(np.ones((100, N), np.float32), group_size=None))
bad("quantize-group-not-dividing", "quantize", "weight [192, 16], group_size=128", ValueError,
    "K = 192 is not a multiple of group_size = 128")(lambda e: w4.quantize(np.ones((192, N), np.float32), 128))
bad("quantize-group-32", "quantize", "group_size=32", ValueError, "group_size = 32 is not supported")(
    lambda e: w4.quantize(e.weight, 32))
bad("quantize-group-0", "quantize", "group_size=0", ValueError, "group_size = 0 is not supported")(
    lambda e: w4.quantize(e.weight, 0))
bad("quantize-nan", "quantize", "weight with a NaN", ValueError, "weight contains NaN or Inf")(
    lambda e: w4.quantize(np.where(np.arange(K * N).reshape(K, N) == 77, np.nan, e.weight)))
bad("quantize-inf", "quantize", "weight with -Inf", ValueError, "weight contains NaN or Inf")(
    lambda e: w4.quantize(np.where(np.arange(K * N).reshape(K, N) == 5, -np.inf, e.weight)))
bad("quantize-beyond-fp16", "quantize", "weight float64 with |w| = 1e6 (scale > fp16 max)", ValueError,
    "exceed what float16 scales can represent")(lambda e: w4.quantize(np.full((K, N), 1e6)))
bad("quantize-empty-k", "quantize", "weight [0, 16]", ValueError, "K = 0 must be a positive multiple of 64")(
    lambda e: w4.quantize(np.ones((0, N), np.float32)))
bad("quantize-empty-n", "quantize", "weight [128, 0]", ValueError, "N = 0 must be a positive multiple of 8")(
    lambda e: w4.quantize(np.ones((K, 0), np.float32)))


@case("quantize-noncontiguous", "quantize", "weight[:, ::2] of a [128, 32] array",
      behaviour="valid: same QuantizedWeight as from a contiguous copy")
def _(e):
    wide = np.repeat(e.weight, 2, axis=1)
    w4_same(w4.quantize(wide[:, ::2], G), w4.quantize(np.ascontiguousarray(wide[:, ::2]), G))


@case("quantize-negative-stride", "quantize", "weight[::-1] (negative row stride)",
      behaviour="valid: same QuantizedWeight as from a contiguous copy")
def _(e):
    w4_same(w4.quantize(e.weight[::-1], G), w4.quantize(e.weight[::-1].copy(), G))


@case("quantize-fortran-order", "quantize", "weight in Fortran (column-major) order",
      behaviour="valid: same QuantizedWeight as from a C-order copy")
def _(e):
    w4_same(w4.quantize(np.asfortranarray(e.weight), G, zero_point=True), w4.quantize(e.weight, G, zero_point=True))


bad("quantize-device-array", "quantize", "weight = torch CUDA tensor", TypeError, r"weight must be a host \(numpy\) array",
    where="gpu")(lambda e: w4.quantize(e.torch.from_numpy(e.weight).cuda()))
bad("quantize-device-requires-grad", "quantize", "weight = torch CUDA tensor with requires_grad", TypeError,
    r"weight must be a host \(numpy\) array", where="gpu")(
    lambda e: w4.quantize(e.torch.from_numpy(e.weight).cuda().requires_grad_()))

# ---- QuantizedWeight.from_int4 ----
F = "QuantizedWeight.from_int4"
bad("from_int4-float-q", F, "qvalues float32", TypeError, "qvalues must be an integer array")(
    lambda e: w4.QuantizedWeight.from_int4(e.q.astype(np.float32), e.s))
bad("from_int4-bool-q", F, "qvalues bool", TypeError, "qvalues must be an integer array")(
    lambda e: w4.QuantizedWeight.from_int4(e.q > 0, e.s))
bad("from_int4-rank-1", F, "qvalues 1-D", ValueError, "qvalues must be 2-D")(
    lambda e: w4.QuantizedWeight.from_int4(e.q.ravel(), e.s))
bad("from_int4-q-above-7", F, "a qvalue of 8", ValueError, r"int4 range \[-8, 7\]; qvalues\[3, 5\] = 8")(
    lambda e: w4.QuantizedWeight.from_int4(np.where(np.arange(K * N).reshape(K, N) == 3 * N + 5, 8, e.q), e.s))
bad("from_int4-q-below-minus-8", F, "a qvalue of -9", ValueError, r"int4 range \[-8, 7\]")(
    lambda e: w4.QuantizedWeight.from_int4(np.where(e.q == e.q.min(), -9, e.q).astype(np.int16), e.s))
bad("from_int4-q-uint8-255", F, "qvalues uint8 with a 255", ValueError, r"int4 range \[-8, 7\]")(
    lambda e: w4.QuantizedWeight.from_int4(np.where(np.arange(K * N).reshape(K, N) == 0, 255, 1).astype(np.uint8), e.s))
bad("from_int4-scales-wrong-n", F, "scales [2, 8] for N = 16", ValueError, r"scales must have shape \[K/group_size, N\]")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s[:, :8]))
bad("from_int4-scales-rows-not-dividing", F, "scales [3, 16] for K = 128 (group inferred)", ValueError,
    "scales has 3 rows, which does not divide K = 128")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, np.ones((3, N), np.float16)))
bad("from_int4-scales-wrong-rows", F, "scales [1, 16] with group_size=64", ValueError,
    r"scales must have shape \(2, 16\), got \(1, 16\)")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s[:1], group_size=64))
bad("from_int4-scales-1d", F, "scales 1-D", ValueError, r"scales must have shape \[K/group_size, N\]")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s.ravel()))
bad("from_int4-scales-empty", F, "scales [0, 16]", ValueError, r"scales must have shape \[K/group_size, N\]")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s[:0]))
bad("from_int4-scales-int", F, "scales int32", TypeError, "scales must be a float array")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, np.ones((2, N), np.int32)))
bad("from_int4-scales-nan", F, "scales with a NaN", ValueError, "scales contains NaN or Inf")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, np.where(np.arange(2 * N).reshape(2, N) == 1, np.nan, e.s)))
bad("from_int4-scales-beyond-fp16", F, "scales float32 = 1e6", ValueError, "scales has values beyond the float16 range")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, np.full((2, N), 1e6, np.float32)))
bad("from_int4-zeros-wrong-shape", F, "zeros [1, 16] with scales [2, 16]", ValueError, r"zeros must have shape \(2, 16\)")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s, e.z[:1]))
bad("from_int4-zeros-inf", F, "zeros with +Inf", ValueError, "zeros contains NaN or Inf")(
    lambda e: w4.QuantizedWeight.from_int4(e.q, e.s, np.full((2, N), np.inf, np.float16)))
bad("from_int4-inferred-group-96", F, "qvalues [192, 16], scales [2, 16] (group 96)", ValueError,
    "group_size = 96 is not supported")(
    lambda e: w4.QuantizedWeight.from_int4(np.zeros((192, N), np.int8), e.s))
bad("from_int4-k-not-64", F, "qvalues [100, 16], scales [1, 16]", ValueError, "K = 100 must be a positive multiple of 64")(
    lambda e: w4.QuantizedWeight.from_int4(np.zeros((100, N), np.int8), e.s[:1]))
bad("from_int4-n-not-8", F, "qvalues [128, 12], scales [2, 12]", ValueError, "N = 12 must be a positive multiple of 8")(
    lambda e: w4.QuantizedWeight.from_int4(e.q[:, :12], e.s[:, :12]))
bad("from_int4-empty-k", F, "qvalues [0, 16], scales [1, 16]", ValueError, "K = 0 must be a positive multiple of 64")(
    lambda e: w4.QuantizedWeight.from_int4(e.q[:0], e.s[:1]))
bad("from_int4-constructor", "QuantizedWeight(...)", "calling the class directly", TypeError, "use QuantizedWeight.from_int4")(
    lambda e: w4.QuantizedWeight(e.q, e.s, None, G))
bad("from_int4-device-q", F, "qvalues = torch CUDA tensor", TypeError, r"qvalues must be a host \(numpy\) array",
    where="gpu")(lambda e: w4.QuantizedWeight.from_int4(e.torch.from_numpy(e.q).cuda(), e.s))


@case("from_int4-negative-stride", F, "qvalues[::-1], scales[::-1], zeros[:, ::-1] views",
      behaviour="valid: same as from contiguous copies")
def _(e):
    w4_same(w4.QuantizedWeight.from_int4(e.q[::-1], e.s[::-1], e.z[:, ::-1]),
            w4.QuantizedWeight.from_int4(e.q[::-1].copy(), e.s[::-1].copy(), e.z[:, ::-1].copy()))


# ---- gemm: arguments checked on any machine (host path) ----
bad("gemm-x-float32", "gemm", "x float32 (numpy)", TypeError, "x must be float16, got float32")(
    lambda e: w4.gemm(e.x.astype(np.float32), e.w))
bad("gemm-x-int", "gemm", "x int32 (numpy)", TypeError, "x must be float16, got int32")(
    lambda e: w4.gemm(e.x.astype(np.int32), e.w))
bad("gemm-x-rank-1", "gemm", "x 1-D (numpy)", ValueError, r"x must be 2-D \[M, K\]")(lambda e: w4.gemm(e.x[0], e.w))
bad("gemm-x-rank-3", "gemm", "x 3-D (numpy)", ValueError, r"x must be 2-D \[M, K\]")(lambda e: w4.gemm(e.x[None], e.w))
bad("gemm-k-mismatch", "gemm", "x [4, 64] with w [128, 16]", ValueError, "x has K = 64 columns but the weight has K = 128 rows")(
    lambda e: w4.gemm(e.x[:, :64], e.w))
bad("gemm-x-list", "gemm", "x = nested list", TypeError, "x must be a numpy array or a GPU array")(
    lambda e: w4.gemm(e.x.tolist(), e.w))
bad("gemm-x-cpu-dlpack", "gemm", "x = an object with __dlpack__ on the CPU", TypeError, "x must be a numpy array or a GPU array")(
    lambda e: w4.gemm(type("CpuDL", (), {"__dlpack__": lambda self, stream=None: e.x.__dlpack__(),
                                         "__dlpack_device__": lambda self: (1, 0)})(), e.w))
bad("gemm-x-cai-host-memory", "gemm", "x = __cuda_array_interface__ over host memory", ValueError,
    "claims __cuda_array_interface__ but its memory is not on a GPU")(
    lambda e: w4.gemm(CAIView(e.x, e.x.ctypes.data, e.x.shape, (2 * K, 2)), e.w))
bad("gemm-w-not-quantized", "gemm", "w = a numpy array", TypeError, "w must be a QuantizedWeight")(
    lambda e: w4.gemm(e.x, e.weight))
bad("gemm-bias-dtype", "gemm", "bias float32 (numpy x)", TypeError, "bias must be float16")(
    lambda e: w4.gemm(e.x, e.w, bias=e.bias.astype(np.float32)))
bad("gemm-bias-shape", "gemm", "bias [8] for N = 16 (numpy x)", ValueError, r"bias must have shape \(16,\)")(
    lambda e: w4.gemm(e.x, e.w, bias=e.bias[:8]))
bad("gemm-bias-rank-2", "gemm", "bias [1, 16] (numpy x)", ValueError, r"bias must have shape \(16,\)")(
    lambda e: w4.gemm(e.x, e.w, bias=e.bias[None]))
bad("gemm-out-shape", "gemm", "out [4, 8] (numpy)", ValueError, r"out must have shape \(4, 16\)")(
    lambda e: w4.gemm(e.x, e.w, out=np.zeros((M, 8), np.float16)))
bad("gemm-out-dtype", "gemm", "out float32 (numpy)", TypeError, "out must be float16")(
    lambda e: w4.gemm(e.x, e.w, out=np.zeros((M, N), np.float32)))
bad("gemm-out-read-only", "gemm", "out read-only (numpy)", ValueError, "out is read-only")(
    lambda e: w4.gemm(e.x, e.w, out=np.broadcast_to(np.zeros(N, np.float16), (M, N))))
bad("gemm-out-list", "gemm", "out = nested list", ValueError, "out must be a numpy array when x is a numpy array")(
    lambda e: w4.gemm(e.x, e.w, out=[[0.0] * N] * M))
bad("gemm-alpha-nan", "gemm", "alpha = NaN", ValueError, "alpha must be finite")(lambda e: w4.gemm(e.x, e.w, alpha=np.nan))
bad("gemm-alpha-inf", "gemm", "alpha = -Inf", ValueError, "alpha must be finite")(lambda e: w4.gemm(e.x, e.w, alpha=-np.inf))
bad("gemm-alpha-str", "gemm", "alpha = '2'", TypeError, "alpha must be a real number")(lambda e: w4.gemm(e.x, e.w, alpha="2"))
bad("gemm-alpha-bool", "gemm", "alpha = True", TypeError, "alpha must be a real number")(lambda e: w4.gemm(e.x, e.w, alpha=True))
bad("gemm-alpha-array", "gemm", "alpha = np.ones(2)", TypeError, "alpha must be a real number")(
    lambda e: w4.gemm(e.x, e.w, alpha=np.ones(2)))
bad("gemm-pdl-str", "gemm", "pdl = 'yes'", TypeError, "pdl must be True or False")(
    lambda e: w4.gemm(e.x, e.w, pdl="yes"))
bad("gemm-config-unknown", "gemm", "config = 'no_such_kernel'", ValueError, "is not in this build")(
    lambda e: w4.gemm(e.x, e.w, config="no_such_kernel"))
bad("gemm-config-index", "gemm", "config = 10000", ValueError, "out of range")(
    lambda e: w4.gemm(e.x, e.w, config=10_000))
bad("gemm-config-negative", "gemm", "config = -1", ValueError, "out of range")(lambda e: w4.gemm(e.x, e.w, config=-1))
bad("gemm-config-bool", "gemm", "config = True", TypeError, "config must be None, 'auto', a config name or an index")(
    lambda e: w4.gemm(e.x, e.w, config=True))
bad("gemm-config-float", "gemm", "config = 1.5", TypeError, "config must be None, 'auto', a config name or an index")(
    lambda e: w4.gemm(e.x, e.w, config=1.5))


@case("gemm-empty-m-host", "gemm", "x [0, 128] (numpy, M = 0)", behaviour="valid: empty float16 [0, 16], no GPU needed")
def _(e):
    y = w4.gemm(np.zeros((0, K), np.float16), e.w)
    assert isinstance(y, np.ndarray) and y.shape == (0, N) and y.dtype == np.float16


@case("gemm-empty-m-host-out", "gemm", "x [0, 128] with out [0, 16] (numpy)", behaviour="valid: returns out")
def _(e):
    out = np.zeros((0, N), np.float16)
    assert w4.gemm(np.zeros((0, K), np.float16), e.w, out=out) is out


# ---- gemm: host path, valid but unusual inputs (runs the GPU) ----
@case("gemm-host-negative-stride-x", "gemm", "x[::-1] (numpy, negative row stride)",
      behaviour="valid (x is copied): bit-identical to a contiguous copy, matches the reference", where="gpu")
def _(e):
    xr = e.x[::-1]
    y = w4.gemm(xr, e.w, bias=e.bias)
    assert np.array_equal(y, w4.gemm(xr.copy(), e.w, bias=e.bias))
    e.close(y, w4.reference_gemm(xr, e.w, bias=e.bias))


@case("gemm-host-noncontiguous-x", "gemm", "x[:, ::2] of a [4, 256] array; x in Fortran order (numpy)",
      behaviour="valid (copied): matches the reference", where="gpu")
def _(e):
    wide = np.repeat(e.x, 2, axis=1)
    e.close(w4.gemm(wide[:, ::2], e.w), w4.reference_gemm(e.x, e.w))
    e.close(w4.gemm(np.asfortranarray(e.x), e.wz), w4.reference_gemm(e.x, e.wz))


@case("gemm-host-out-view", "gemm", "out = big[:, :16] of a NaN [4, 32] array (numpy)",
      behaviour="valid: out filled, big[:, 16:] still NaN", where="gpu")
def _(e):
    big = np.full((M, 2 * N), np.nan, np.float16)
    assert w4.gemm(e.x, e.w, out=big[:, :N]) is not None
    e.close(big[:, :N], w4.reference_gemm(e.x, e.w))
    assert np.isnan(big[:, N:]).all()


@case("gemm-host-out-negative-stride", "gemm", "out = buf[::-1] (numpy), bias[::-1]",
      behaviour="valid: out filled in place, matches the reference", where="gpu")
def _(e):
    buf = np.full((M, N), np.nan, np.float16)
    b2 = e.bias[::-1]
    w4.gemm(e.x, e.w, bias=b2, out=buf[::-1])
    e.close(buf[::-1], w4.reference_gemm(e.x, e.w, bias=b2))


@case("gemm-host-out-is-x", "gemm", "out = x (numpy, K == N)", behaviour="valid (x is copied first): x overwritten "
      "with the result", where="gpu")
def _(e):
    w = w4.quantize(e.rng.standard_normal((K, K)).astype(np.float32), G)
    x = e.x.copy()
    ref = w4.reference_gemm(x, w)
    w4.gemm(x, w, out=x)
    e.close(x, ref)


bad("gemm-config-wrong-mode", "gemm", "config of the zero-point kind for scale-only weights", ValueError,
    "is for zero-point weights but the weights have no zero points", where="gpu")(
    lambda e: w4.gemm(e.x, e.w, config=e.config(True)))
@case("gemm-config-decode-large-m", "gemm", "the decode config (m <= 256) for x with M = 257",
      behaviour="ValueError: `the decode kernel serves 1 <= m <= 256`", where="gpu")
def _(e):
    names = [c["name"] for c in w4.list_configs() if c.get("schedule") == "decode" and not c["zeros"]]
    if not names:
        pytest.skip("no decode config in this build")
    x = np.zeros((257, K), np.float16)
    with pytest.raises(ValueError, match="the decode kernel serves 1 <= m <= 256"):
        w4.gemm(x, e.w, config=names[0])
    assert w4.gemm(x[:256], e.w, config=names[0]).shape == (256, N)


bad("gemm-host-bias-on-device", "gemm", "numpy x, bias a torch CUDA tensor", ValueError,
    "bias is a GPU array but x is a host", where="gpu")(
    lambda e: w4.gemm(e.x, e.w, bias=e.torch.from_numpy(e.bias).cuda()))
bad("gemm-host-out-on-device", "gemm", "numpy x, out a torch CUDA tensor", ValueError,
    "out must be a numpy array when x is a numpy array", where="gpu")(lambda e: w4.gemm(e.x, e.w, out=e.nan(M, N)))

# ---- gemm: device path (torch CUDA tensors) ----
bad("gemm-dev-x-float32", "gemm", "x torch float32", TypeError, "x must be float16, got float32", where="gpu")(
    lambda e: w4.gemm(e.xt.float(), e.w))
bad("gemm-dev-x-bfloat16", "gemm", "x torch bfloat16", TypeError, "x must be float16", where="gpu")(
    lambda e: w4.gemm(e.xt.bfloat16(), e.w))
bad("gemm-dev-x-requires-grad", "gemm", "x torch float16 with requires_grad", TypeError,
    "x cannot be read as a GPU array", where="gpu")(lambda e: w4.gemm(e.xt.requires_grad_(), e.w))
bad("gemm-dev-x-rank-1", "gemm", "x torch 1-D", ValueError, "x must be 2-D", where="gpu")(lambda e: w4.gemm(e.xt[0], e.w))
bad("gemm-dev-x-rank-3", "gemm", "x torch 3-D", ValueError, "x must be 2-D", where="gpu")(lambda e: w4.gemm(e.xt[None], e.w))
bad("gemm-dev-k-mismatch", "gemm", "x torch [4, 64] with w [128, 16]", ValueError, r"x must have shape \(M, 128\)",
    where="gpu")(lambda e: w4.gemm(e.xt[:, :64].contiguous(), e.w))
bad("gemm-dev-x-cpu-tensor", "gemm", "x a torch CPU tensor", TypeError, "x must be a numpy array or a GPU array",
    where="gpu")(lambda e: w4.gemm(e.torch.from_numpy(e.x), e.w))
bad("gemm-dev-x-noncontiguous", "gemm", "x torch [:, ::2] (column stride 2)", ValueError,
    "contiguous along its last dimension", where="gpu")(
    lambda e: w4.gemm(e.torch.repeat_interleave(e.xt, 2, dim=1)[:, ::2], e.w))
bad("gemm-dev-x-column-major", "gemm", "x torch column-major (x.t().contiguous().t())", ValueError,
    "contiguous along its last dimension", where="gpu")(lambda e: w4.gemm(e.xt.t().contiguous().t(), e.w))
bad("gemm-dev-x-negative-stride", "gemm", "x with a negative row stride (__cuda_array_interface__)", ValueError,
    "negative or overlapping rows", where="gpu")(
    lambda e: (lambda t: w4.gemm(CAIView(t, t.data_ptr() + (M - 1) * K * 2, (M, K), (-2 * K, 2)), e.w))(e.xt))
bad("gemm-dev-x-broadcast-rows", "gemm", "x torch expand()ed rows (row stride 0)", ValueError,
    "negative or overlapping rows", where="gpu")(lambda e: w4.gemm(e.xt[:1].expand(M, K), e.w))
bad("gemm-dev-x-misaligned", "gemm", "x torch starting 2 bytes into its buffer", ValueError, "x must be 16-byte aligned",
    where="gpu")(lambda e: w4.gemm(e.torch.zeros(M * K + 1, dtype=e.torch.float16, device="cuda")[1:].view(M, K), e.w))
bad("gemm-dev-x-row-stride-not-8", "gemm", "x torch rows 132 elements apart", ValueError,
    "row stride that is a multiple of 8 elements", where="gpu")(
    lambda e: w4.gemm(e.torch.zeros((M, K + 4), dtype=e.torch.float16, device="cuda")[:, :K], e.w))
bad("gemm-dev-bias-host", "gemm", "torch x, bias numpy", ValueError, r"bias must be on the same GPU as x \(got a host array",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, bias=e.bias))
bad("gemm-dev-bias-cpu-tensor", "gemm", "torch x, bias a torch CPU tensor", ValueError, "bias must be on the same GPU as x",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, bias=e.torch.from_numpy(e.bias)))
bad("gemm-dev-bias-dtype", "gemm", "torch x, bias float32", TypeError, "bias must be float16", where="gpu")(
    lambda e: w4.gemm(e.xt, e.w, bias=e.torch.from_numpy(e.bias).cuda().float()))
bad("gemm-dev-bias-shape", "gemm", "torch x, bias [8]", ValueError, r"bias must have shape \(16,\)", where="gpu")(
    lambda e: w4.gemm(e.xt, e.w, bias=e.torch.from_numpy(e.bias[:8]).cuda()))
bad("gemm-dev-bias-noncontiguous", "gemm", "torch x, bias[::2] of a [32] tensor", ValueError, "bias must be contiguous",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, bias=e.torch.zeros(2 * N, dtype=e.torch.float16, device="cuda")[::2]))
bad("gemm-dev-bias-misaligned", "gemm", "torch x, bias starting 2 bytes into its buffer", ValueError,
    "bias must be 16-byte aligned", where="gpu")(
    lambda e: w4.gemm(e.xt, e.w, bias=e.torch.zeros(N + 1, dtype=e.torch.float16, device="cuda")[1:]))
bad("gemm-dev-out-host", "gemm", "torch x, out numpy", ValueError, r"out must be on the same GPU as x \(got a host array",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, out=np.zeros((M, N), np.float16)))
bad("gemm-dev-out-cpu-tensor", "gemm", "torch x, out a torch CPU tensor", ValueError, "out must be on the same GPU as x",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, out=e.nan(M, N, device="cpu")))
bad("gemm-dev-out-dtype", "gemm", "torch x, out float32", TypeError, "out must be float16", where="gpu")(
    lambda e: w4.gemm(e.xt, e.w, out=e.nan(M, N).float()))
bad("gemm-dev-out-shape", "gemm", "torch x, out [4, 24]", ValueError, r"out must have shape \(4, 16\)", where="gpu")(
    lambda e: w4.gemm(e.xt, e.w, out=e.nan(M, N + 8)))
bad("gemm-dev-out-column-major", "gemm", "torch x, out column-major", ValueError,
    "out must be contiguous along its last dimension", where="gpu")(lambda e: w4.gemm(e.xt, e.w, out=e.nan(N, M).t()))
bad("gemm-dev-out-overlaps-x", "gemm", "out = x[:, :16] (same memory as x)", ValueError, "out overlaps x", where="gpu")(
    lambda e: (lambda t: w4.gemm(t, e.w, out=t[:, :N]))(e.xt))
bad("gemm-dev-stream-type", "gemm", "stream = 'default'", TypeError, "stream must be an int handle or a stream object",
    where="gpu")(lambda e: w4.gemm(e.xt, e.w, stream="default"))


@case("gemm-dev-out-misaligned", "gemm", "out starting 2 bytes into a NaN buffer",
      behaviour="ValueError: `out must be 16-byte aligned`; the buffer stays all NaN", where="gpu")
def _(e):
    buf = e.nan(M * N + 8)
    with pytest.raises(ValueError, match="out must be 16-byte aligned"):
        w4.gemm(e.xt, e.w, out=buf[1:1 + M * N].view(M, N))
    e.torch.cuda.synchronize()
    assert e.torch.isnan(buf).all()


@case("gemm-dev-out-view-guard", "gemm", "out = a [4, 16] view in the middle of a NaN buffer (64 guard elements "
      "each side)", behaviour="valid: out matches the reference, both guards still NaN", where="gpu")
def _(e):
    buf = e.nan(64 + M * N + 64)
    out = buf[64:64 + M * N].view(M, N)
    assert w4.gemm(e.xt, e.wz, bias=e.torch.from_numpy(e.bias).cuda(), out=out) is out
    e.torch.cuda.synchronize()
    e.close(out.cpu().numpy(), w4.reference_gemm(e.x, e.wz, bias=e.bias))
    assert e.torch.isnan(buf[:64]).all() and e.torch.isnan(buf[64 + M * N:]).all()


@case("gemm-dev-out-strided-view", "gemm", "out = big[:, :16] of a NaN [4, 40] tensor (row stride 40)",
      behaviour="valid: written in place, big[:, 16:] still NaN", where="gpu")
def _(e):
    big = e.nan(M, N + 24)
    w4.gemm(e.xt, e.w, out=big[:, :N])
    e.torch.cuda.synchronize()
    e.close(big[:, :N].cpu().numpy(), w4.reference_gemm(e.x, e.w))
    assert e.torch.isnan(big[:, N:]).all()


@case("gemm-dev-x-padded-rows", "gemm", "x = big[:, :128] of a [4, 192] tensor (row stride 192)",
      behaviour="valid: read in place, matches the reference", where="gpu")
def _(e):
    big = e.torch.full((M, K + 64), float("nan"), dtype=e.torch.float16, device="cuda")
    big[:, :K] = e.xt
    y = w4.gemm(big[:, :K], e.w)
    e.torch.cuda.synchronize()
    e.close(y.cpu().numpy(), w4.reference_gemm(e.x, e.w))


@case("gemm-dev-empty-m", "gemm", "x torch [0, 128] (M = 0), with and without out",
      behaviour="valid: empty torch [0, 16]; nothing launched", where="gpu")
def _(e):
    x0 = e.torch.zeros((0, K), dtype=e.torch.float16, device="cuda")
    y = w4.gemm(x0, e.w)
    assert tuple(y.shape) == (0, N) and y.dtype == e.torch.float16
    out = e.torch.empty((0, N), dtype=e.torch.float16, device="cuda")
    assert w4.gemm(x0, e.wz, out=out) is out


@case("gemm-dev-other-gpu", "gemm", "x on cuda:1 with out / bias on cuda:0; and x on cuda:1 alone",
      behaviour="ValueError: `out is on cuda:0 but x is on cuda:1` (and for bias); x alone on cuda:1 is valid "
      "(the weight gets a copy there)", where="multi_gpu")
def _(e):
    torch = e.torch
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    x1 = e.xt.to("cuda:1")
    with pytest.raises(ValueError, match="out is on cuda:0 but x is on cuda:1"):
        w4.gemm(x1, e.w, out=e.nan(M, N))
    with pytest.raises(ValueError, match="bias is on cuda:0 but x is on cuda:1"):
        w4.gemm(x1, e.w, bias=torch.from_numpy(e.bias).cuda())
    y = w4.gemm(x1, e.w)
    torch.cuda.synchronize(1)
    assert y.device == x1.device
    e.close(y.cpu().numpy(), w4.reference_gemm(e.x, e.w))


# ---- reference_gemm ----
R = "reference_gemm"
bad("reference-w-not-quantized", R, "w = a numpy array", TypeError, "w must be a QuantizedWeight")(
    lambda e: w4.reference_gemm(e.x, e.weight))
bad("reference-x-rank", R, "x 1-D", ValueError, r"x must be 2-D \[M, K\]")(lambda e: w4.reference_gemm(e.x[0], e.w))
bad("reference-k-mismatch", R, "x [4, 64] with w [128, 16]", ValueError, "x has K = 64 columns")(
    lambda e: w4.reference_gemm(e.x[:, :64], e.w))
bad("reference-bias-shape", R, "bias [8]", ValueError, r"bias must have shape \(16,\)")(
    lambda e: w4.reference_gemm(e.x, e.w, bias=e.bias[:8]))
bad("reference-x-device", R, "x a torch CUDA tensor", TypeError, r"x must be a host \(numpy\) array", where="gpu")(
    lambda e: w4.reference_gemm(e.xt, e.w))


@case("reference-empty-m", R, "x [0, 128]", behaviour="valid: float64 [0, 16]")
def _(e):
    y = w4.reference_gemm(np.zeros((0, K), np.float16), e.w)
    assert y.shape == (0, N) and y.dtype == np.float64


@case("reference-negative-stride", R, "x[::-1]", behaviour="valid: equals the result for a contiguous copy")
def _(e):
    assert np.array_equal(w4.reference_gemm(e.x[::-1], e.wz, e.bias), w4.reference_gemm(e.x[::-1].copy(), e.wz, e.bias))


# ---- select_config ----
S = "select_config"
bad("select-n-not-8", S, "n = 12", ValueError, "n a positive multiple of 8")(lambda e: w4.select_config(16, 12, 4096))
bad("select-k-not-64", S, "k = 100", ValueError, "k a positive multiple of 64")(lambda e: w4.select_config(16, 4096, 100))
bad("select-group-32", S, "group_size = 32", ValueError, "group_size=32 is not supported")(
    lambda e: w4.select_config(16, 4096, 4096, group_size=32))
bad("select-group-not-dividing", S, "k = 192, group_size = 128", ValueError, "group_size=128 is not supported for k=192")(
    lambda e: w4.select_config(16, 4096, 192, group_size=128))
bad("select-m-negative", S, "m = -1", ValueError, "need m >= 0")(lambda e: w4.select_config(-1, 4096, 4096))
bad("select-m-too-large", S, "m = 2^31", ValueError, r"each below 2\^31")(lambda e: w4.select_config(2**31, 4096, 4096))
bad("select-m-overflow", S, "m = 2^70 (not an int64)", TypeError, "incompatible function arguments")(
    lambda e: w4.select_config(2**70, 4096, 4096))
bad("select-m-float", S, "m = 1.5", TypeError, "incompatible function arguments")(
    lambda e: w4.select_config(1.5, 4096, 4096))


@case("select-m-zero", S, "m = 0; zero_point=True", behaviour="valid: a config name of the right mode")
def _(e):
    names = [c["name"] for c in w4.list_configs()]
    assert w4.select_config(0, 4096, 4096) in names
    name = w4.select_config(16, 4096, 4096, zero_point=True)
    assert next(c for c in w4.list_configs() if c["name"] == name)["zeros"]


@case("select-sm-count-0", S, "sm_count = 0 (ask the current GPU)",
      behaviour="GPU: valid name; no GPU: NoSM90DeviceError")
def _(e):
    if has_gpu():
        assert w4.select_config(16, 4096, 4096, sm_count=0) in [c["name"] for c in w4.list_configs()]
    else:
        with pytest.raises(w4.NoSM90DeviceError):
            w4.select_config(16, 4096, 4096, sm_count=0)


# ---- describe_launch ----
D = "describe_launch"


def decode_config() -> str:
    name = "w4a16_sm90_decode_m256_s"
    if name not in {c["name"] for c in w4.list_configs()}:
        pytest.skip(f"{name} is not in this (subset) build")
    return name


def scale_only_config() -> str:
    return next(c["name"] for c in w4.list_configs() if not c["zeros"])


bad("describe-n-not-8", D, "n = 12", ValueError, "n a positive multiple of 8")(lambda e: w4.describe_launch(16, 12, 4096))
bad("describe-group-32", D, "group_size = 32", ValueError, "group_size=32 is not supported")(
    lambda e: w4.describe_launch(16, 4096, 4096, group_size=32))
bad("describe-decode-m-512", D, "m = 512, config = the decode kernel", ValueError, "serves 1 <= m <= 256")(
    lambda e: w4.describe_launch(512, 4096, 4096, config=decode_config()))
bad("describe-config-wrong-mode", D, "zero_point=True, a scale-only config", ValueError, "is for scale-only weights")(
    lambda e: w4.describe_launch(16, 4096, 4096, zero_point=True, config=scale_only_config()))
bad("describe-config-auto", D, "config = 'auto'", ValueError, "'auto' depends on timings")(
    lambda e: w4.describe_launch(16, 4096, 4096, config="auto"))
bad("describe-config-unknown", D, "config = 'nope'", ValueError, "is not in this build")(
    lambda e: w4.describe_launch(16, 4096, 4096, config="nope"))
bad("describe-config-float", D, "config = 1.5", TypeError, "config must be None")(
    lambda e: w4.describe_launch(16, 4096, 4096, config=1.5))


@case("describe-m-zero", D, "m = 0", behaviour="valid: the config's name, nothing to launch")
def _(e):
    assert w4.describe_launch(0, 4096, 4096).endswith(": nothing to launch (m = 0)")


@case("describe-sm-count-0", D, "sm_count = 0 (ask the current GPU)",
      behaviour="GPU: that GPU's plan; no GPU: NoSM90DeviceError")
def _(e):
    if has_gpu():
        assert w4.describe_launch(16, 4096, 4096, sm_count=0).startswith(w4.select_config(16, 4096, 4096, sm_count=0))
    else:
        with pytest.raises(w4.NoSM90DeviceError):
            w4.describe_launch(16, 4096, 4096, sm_count=0)


# ---- device_info ----
@case("device_info-negative", "device_info", "device = -1; device = 99",
      behaviour="GPU: ValueError `device -1 does not exist`; no GPU: {'supported': False, 'reason': ...}")
def _(e):
    for d in (-1, 99):
        if has_gpu():
            with pytest.raises(ValueError, match=f"device {d} does not exist"):
                w4.device_info(d)
        else:
            info = w4.device_info(d)
            assert info["supported"] is False and info["reason"]


@case("device_info-type", "device_info", "device = '0'",
      behaviour="GPU: TypeError; no GPU: {'supported': False, ...} (the device is never looked at)")
def _(e):
    if has_gpu():
        with pytest.raises(TypeError):
            w4.device_info("0")
    else:
        assert w4.device_info("0")["supported"] is False


# ---- no (SM90) GPU ----
NO_GPU_SCRIPT = """
import numpy as np, w4a16_gemm as w4
info = w4.device_info()
assert info["supported"] is False and info["reason"], info
w = w4.quantize(np.ones((64, 8), np.float32), 64)
assert w4.reference_gemm(np.ones((2, 64), np.float16), w).shape == (2, 8)
assert w4.select_config(4, 64, 128) in [c["name"] for c in w4.list_configs()]
for call in (lambda: w4.gemm(np.ones((2, 64), np.float16), w), lambda: w4.select_config(4, 64, 128, sm_count=0)):
    try:
        call()
    except w4.NoSM90DeviceError as exc:
        assert isinstance(exc, RuntimeError) and str(exc)
    else:
        raise SystemExit("no NoSM90DeviceError")
print("NO-GPU-OK")
"""


@case("no-gpu-python", "gemm, device_info, select_config", "no visible GPU (CUDA_VISIBLE_DEVICES='' in a subprocess)",
      behaviour="device_info: supported False + reason; gemm and select_config(sm_count=0): NoSM90DeviceError; "
      "quantize / reference_gemm / select_config(sm_count given) work")
def _(e):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-c", NO_GPU_SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "NO-GPU-OK" in r.stdout, (r.stdout, r.stderr)


@case("no-gpu-gemm-in-process", "gemm", "numpy x on a machine without an SM90 GPU",
      behaviour="NoSM90DeviceError (a RuntimeError) naming the reason", where="no_gpu")
def _(e):
    with pytest.raises(w4.NoSM90DeviceError, match="SM90|GPU|device"):
        w4.gemm(e.x, e.w)


@case("no-gpu-cli", "w4a16_only_test", "valid problem, no visible GPU (CUDA_VISIBLE_DEVICES='')",
      behaviour="exit 3, one line `w4a16_only_test: no SM90 GPU: ...`")
def _(e):
    r = cli("3", "72", "192", "--group-size", "64", env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert r.returncode == 3 and r.stderr.strip().count("\n") == 0 and "no SM90 GPU" in r.stderr, (r.returncode, r.stderr)


# ---- the CLI ----
CLI_USAGE = [
    ("cli-n-not-8", ["1", "12", "64", "--group-size", "64"], "n a positive multiple of 8"),
    ("cli-k-not-64", ["1", "16", "100"], "multiple of 64"),
    ("cli-group-not-dividing", ["1", "16", "192", "--group-size", "128"], "group_size=128 is not supported for k=192"),
    ("cli-group-32", ["1", "16", "128", "--group-size", "32"], "group_size=32"),
    ("cli-group-0", ["1", "16", "128", "--group-size", "0"], "--group-size must be in"),
    ("cli-m-zero", ["0", "16", "64"], "M must be in"),
    ("cli-m-negative", ["-5", "16", "64"], "M must be in"),
    ("cli-m-not-int", ["a", "16", "64"], "M must be an integer"),
    ("cli-m-overflow", ["99999999999999999999", "16", "64"], "M must be an integer"),
    ("cli-n-too-large", ["1", "2147483648", "64"], "N must be in"),
    ("cli-two-numbers", ["1", "2"], "expected M N K"),
    ("cli-four-numbers", ["1", "16", "64", "4"], "expected M N K"),
    ("cli-unknown-option", ["--bogus"], "unknown option"),
    ("cli-missing-value", ["--iters"], "--iters needs a value"),
    ("cli-iters-zero", ["--iters", "0"], "--iters must be in"),
    ("cli-config-unknown", ["--config", "no_such_kernel"], "not in this build"),
    ("cli-config-index", ["--config", "999"], "not in this build"),
]
for _id, _args, _match in CLI_USAGE:
    case(_id, "w4a16_only_test", " ".join(_args) or "(none)",
         behaviour=f"exit 2, one line `w4a16_only_test: ...{_match}...`")(
        lambda e, a=_args, m=_match: assert_cli_usage_error(cli(*a), re.escape(m)))


@case("cli-config-wrong-mode", "w4a16_only_test", "--zeros with a scale-only --config",
      behaviour="GPU: exit 2 `... is for scale-only weights ...`; no GPU: exit 3")
def _(e):
    r = cli("1", "16", "64", "--group-size", "64", "--zeros", "--config", e.config(False))
    if has_gpu():
        assert_cli_usage_error(r, "is for scale-only weights")
    else:
        assert r.returncode == 3, (r.returncode, r.stderr)


@case("cli-valid", "w4a16_only_test", "3 72 192 --group-size 64; 5 24 128 --zeros --group-size 128",
      behaviour="exit 0 (checked against its reference)", where="gpu")
def _(e):
    for args in (["3", "72", "192", "--group-size", "64"], ["5", "24", "128", "--zeros", "--group-size", "128"]):
        r = cli(*args, "--iters", "2", "--warmup", "1")
        assert r.returncode == 0, (args, r.stdout, r.stderr)


# ---- the tests ----------------------------------------------------------------------------------------------

def _param(c: Case):
    marks = []
    if c.where in ("gpu", "multi_gpu"):
        marks.append(pytest.mark.gpu)
    if c.where == "no_gpu":
        marks.append(pytest.mark.skipif(has_gpu(), reason="the behaviour of a machine without an SM90 GPU"))
    return pytest.param(c, id=c.id, marks=marks)


@pytest.fixture
def env(rng):
    return Env(rng)


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_bad_input(c: Case, env):
    if c.exc is not None:
        with pytest.raises(c.exc, match=c.match):
            c.fn(env)
    else:
        c.fn(env)
    if c.where in ("gpu", "multi_gpu"):
        env.torch.cuda.synchronize()  # an asynchronous fault would surface here


@pytest.mark.gpu
def test_process_still_healthy_after_the_table(rng):
    """After every bad call above, the library and the GPU still work (no sticky CUDA error)."""
    e = Env(rng)
    e.close(w4.gemm(e.x, e.wz, bias=e.bias), w4.reference_gemm(e.x, e.wz, bias=e.bias))
    y = w4.gemm(e.xt, e.w)
    e.torch.cuda.synchronize()
    e.close(y.cpu().numpy(), w4.reference_gemm(e.x, e.w))


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def render_table() -> str:
    where = {"any": "any", "gpu": "GPU", "multi_gpu": "2 GPUs", "no_gpu": "no GPU"}
    rows = ["| id | function | input | behaviour | runs on |", "| --- | --- | --- | --- | --- |"]
    for c in CASES:
        cells = [f"`{c.id}`", c.func, c.input, c.describe(), where[c.where]]
        rows.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(rows)


def test_docs_mirror_the_table():
    with open(DOC) as f:
        text = f.read()
    documented = re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)
    assert documented == [c.id for c in CASES], "docs/bad_input.md is out of date: python tests/test_bad_input.py"
    assert render_table() in text, "docs/bad_input.md's table differs: regenerate it with python tests/test_bad_input.py"


if __name__ == "__main__":
    print(render_table())
