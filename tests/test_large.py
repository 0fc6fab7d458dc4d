"""Sizes past 32-bit offsets, and running out of GPU memory (marker `gpu`; a few seconds each).

- outputs past 2^31 bytes (M = 32768, N = 57344: 3.5 GiB) and past 2^31 elements, with small K;
- an x past 2^31 elements (and bytes); a weight past 2^31 int4 values (1 GiB packed);
  each checked in full against a float32 reference on the GPU (chunked), plus sampled rows (the first
  and last ones included) against the float64 host reference; outputs are NaN-poisoned and sit in a
  larger buffer whose tail must stay NaN;
- out of memory: a numpy x too large for the device, a weight upload into a full GPU, and a library-owned
  output (DeviceArray) into a full GPU raise w4a16_gemm.OutOfMemoryError (a RuntimeError and a MemoryError),
  and the process stays usable: the next gemm works, with the same weight too.
"""

from __future__ import annotations


import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import hardening_report as report

pytestmark = pytest.mark.gpu
REL_TOL = 2e-3
GIB = 1 << 30


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    yield torch
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def int4_values(rng, k, n):
    """Random int4 values, cheaply (one random byte per value) even for billions of them."""
    q = np.frombuffer(rng.bytes(k * n), dtype=np.uint8).reshape(k, n) & np.uint8(15)
    q = q.view(np.int8)
    q -= np.int8(8)
    return q


def make_weight(rng, k, n, g, zeros):
    q = int4_values(rng, k, n)
    s = ((rng.random((k // g, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // g, n)) / np.sqrt(k)).astype(np.float16) if zeros else None
    return w4.QuantizedWeight.from_int4(q, s, z, group_size=g)


def dequantized_columns(torch, w, c0, c1):
    """float32 [K, c1 - c0] of the dequantized weight, built on the GPU."""
    g = w.group_size
    q = torch.from_numpy(np.array(w.qvalues[:, c0:c1])).cuda().float()
    s = torch.from_numpy(np.array(w.scales[:, c0:c1])).cuda().float().repeat_interleave(g, 0)
    d = q * s
    if w.zeros is not None:
        d += torch.from_numpy(np.array(w.zeros[:, c0:c1])).cuda().float().repeat_interleave(g, 0)
    return d


def full_check_on_gpu(torch, x, w, out, bias=None, row_chunk=4096, col_chunk=None):
    """||out - ref|| / ||ref|| over the whole output, ref = x @ dequant(w) (+ bias) in float32 on the GPU."""
    m, n = out.shape
    col_chunk = col_chunk or n
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    diff2 = ref2 = 0.0
    try:
        for c0 in range(0, n, col_chunk):
            c1 = min(n, c0 + col_chunk)
            wd = dequantized_columns(torch, w, c0, c1)
            b = None if bias is None else bias[c0:c1].float()
            for r0 in range(0, m, row_chunk):
                r1 = min(m, r0 + row_chunk)
                ref = x[r0:r1].float() @ wd
                if b is not None:
                    ref += b
                got = out[r0:r1, c0:c1].float()
                if not torch.isfinite(got).all():
                    raise AssertionError(f"non-finite outputs in rows {r0}:{r1}, columns {c0}:{c1}")
                diff2 += float(((got - ref) ** 2).sum(dtype=torch.float64))
                ref2 += float((ref ** 2).sum(dtype=torch.float64))
            del wd
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    return (diff2 / max(ref2, 1e-30)) ** 0.5


def sampled_rows_check(torch, x, w, out, rows, bias_host=None):
    xs = x[rows].cpu().numpy()
    ref = w4.reference_gemm(xs, w, bias=bias_host)
    got = out[rows].cpu().numpy().astype(np.float64)
    assert np.all(np.isfinite(got))
    return np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)


def guarded_output(torch, m, n, guard=1 << 16):
    """An M x N view at the start of a NaN-filled buffer with `guard` more elements after it."""
    buf = torch.full((m * n + guard,), float("nan"), dtype=torch.float16, device="cuda")
    return buf, buf[: m * n].view(m, n)


@pytest.mark.parametrize("m,n,k,g", [
    (32768, 57344, 64, 64),     # 3.5 GiB of output: byte offsets past 2^31 (elements just below)
    (40960, 57344, 128, 128),   # 4.4 GiB: element offsets past 2^31 too
])
def test_output_past_2gib(rng, torch, m, n, k, g):
    assert m * n * 2 > 2**31
    w = make_weight(rng, k, n, g, zeros=(k == 128))
    bias_host = rng.standard_normal(n).astype(np.float16)
    bias = torch.from_numpy(bias_host).cuda()
    x = torch.empty((m, k), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    buf, out = guarded_output(torch, m, n)
    assert w4.gemm(x, w, bias=bias, out=out) is out
    torch.cuda.synchronize()
    assert torch.isnan(buf[m * n:]).all(), "wrote past the end of out"
    rows = sorted({0, 1, 4095, 4096, m // 2, m - 4097, m - 2, m - 1, *rng.integers(0, m, 8).tolist()})
    err_rows = sampled_rows_check(torch, x, w, out, rows, bias_host)
    err_full = full_check_on_gpu(torch, x, w, out, bias=bias)
    report(f"large out: m={m} n={n} k={k} ({m * n * 2 / GIB:.2f} GiB, {m * n / 2**31:.2f} x 2^31 elements): "
           f"full rel_err={err_full:.2e}, sampled rows (float64) rel_err={err_rows:.2e}, guard intact")
    assert err_rows < REL_TOL and err_full < REL_TOL
    del buf, out, x


def test_x_past_2pow31_elements(rng, torch):
    m, k, n = 294912, 8192, 64  # x: 2.4e9 elements, 4.5 GiB
    assert m * k > 2**31
    w = make_weight(rng, k, n, 128, zeros=False)
    x = torch.empty((m, k), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    buf, out = guarded_output(torch, m, n)
    w4.gemm(x, w, out=out)
    torch.cuda.synchronize()
    assert torch.isnan(buf[m * n:]).all(), "wrote past the end of out"
    rows = sorted({0, 1, m // 2, m - 2, m - 1, *rng.integers(0, m, 6).tolist()})
    err_rows = sampled_rows_check(torch, x, w, out, rows)
    err_full = full_check_on_gpu(torch, x, w, out, row_chunk=32768)
    report(f"large x: m={m} k={k} n={n} ({m * k * 2 / GIB:.2f} GiB, {m * k / 2**31:.2f} x 2^31 elements): "
           f"full rel_err={err_full:.2e}, sampled rows rel_err={err_rows:.2e}")
    assert err_rows < REL_TOL and err_full < REL_TOL
    del buf, out, x


@pytest.fixture(scope="module")
def weight_past_2pow31():
    k, n = 32768, 65552  # 2.15e9 int4 values, 1 GiB packed
    assert k * n > 2**31
    return make_weight(np.random.default_rng(31), k, n, 128, zeros=False)


@pytest.mark.parametrize("m", [16, 256])
def test_weight_past_2pow31_values(rng, torch, weight_past_2pow31, m):
    w = weight_past_2pow31
    k, n = w.shape
    x = torch.empty((m, k), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    buf, out = guarded_output(torch, m, n)
    w4.gemm(x, w, out=out)
    torch.cuda.synchronize()
    assert torch.isnan(buf[m * n:]).all(), "wrote past the end of out"
    err_full = full_check_on_gpu(torch, x, w, out, col_chunk=8192)
    # The last columns sit at the largest offsets of the packed buffer: check them in float64 too.
    cols = np.r_[0:8, n - 24:n]
    xs = x.cpu().numpy().astype(np.float64)
    wd = w.qvalues[:, cols].astype(np.float64) * np.repeat(w.scales[:, cols].astype(np.float64), w.group_size, axis=0)
    ref = xs @ wd
    got = out[:, cols.tolist()].cpu().numpy().astype(np.float64)
    err_cols = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    report(f"large weight: k={k} n={n} ({k * n / 2**31:.2f} x 2^31 values) m={m}: full rel_err={err_full:.2e}, "
           f"first/last columns (float64) rel_err={err_cols:.2e}")
    assert err_full < REL_TOL and err_cols < REL_TOL
    del buf, out, x


# ---- out of memory (scripts/hardening_check.sh runs these alone: they fill the GPU) ----

def small_problem_ok(torch, rng, w=None):
    w = w or make_weight(rng, 256, 64, 128, zeros=False)
    x = rng.uniform(-1, 1, size=(3, w.shape[0])).astype(np.float16)
    y = w4.gemm(x, w)
    yt = w4.gemm(torch.from_numpy(x).cuda(), w)
    torch.cuda.synchronize()
    ref = w4.reference_gemm(x, w)
    for out in (y, yt.cpu().numpy()):
        assert np.linalg.norm(out.astype(np.float64) - ref) / np.linalg.norm(ref) < REL_TOL


def test_out_of_memory_numpy_x_too_large_for_the_device(rng, torch):
    k = 1 << 17
    w = make_weight(rng, k, 8, 128, zeros=False)
    m = (1 << 40) // (2 * k)  # a 1 TiB x: a broadcast view, so it costs the host nothing
    x = np.broadcast_to(np.zeros((1, k), np.float16), (m, k))
    with pytest.raises(w4.OutOfMemoryError, match="out of GPU memory") as info:
        w4.gemm(x, w)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, RuntimeError)
    small_problem_ok(torch, rng)
    report("oom: numpy x of 1 TiB -> OutOfMemoryError; next gemm fine")


def fill_gpu(torch, leave_bytes):
    """Allocates all free device memory but `leave_bytes`; returns the hog tensors."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    hogs = []
    size = free - leave_bytes
    while size > (64 << 20):
        try:
            hogs.append(torch.empty(size, dtype=torch.uint8, device="cuda"))
        except torch.cuda.OutOfMemoryError:
            size //= 2
            continue
        free, _ = torch.cuda.mem_get_info()
        size = free - leave_bytes
    return hogs


def test_out_of_memory_weight_upload_and_output(rng, torch):
    big = make_weight(rng, 8192, 65536, 128, zeros=False)  # 256 MiB packed
    small = make_weight(rng, 256, 64, 128, zeros=False)
    xt = torch.from_numpy(rng.uniform(-1, 1, size=(4, 8192)).astype(np.float16)).cuda()
    x_small = torch.from_numpy(rng.uniform(-1, 1, size=(4, 256)).astype(np.float16)).cuda()
    w4.gemm(x_small, small)
    # For the output case: x of 2^20 x 64 (128 MiB) and a weight of N = 8192, both on the device before the
    # GPU fills up; their output would be 16 GiB.
    w_wide = make_weight(rng, 64, 8192, 64, zeros=False)
    x_tall = torch.empty((1 << 20, 64), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    w4.gemm(x_tall[:2], w_wide)
    torch.cuda.synchronize()

    class OnlyCAI:  # a foreign array: gemm allocates its output itself (a DeviceArray)
        def __init__(self, t):
            self.t = t
            self.__cuda_array_interface__ = t.__cuda_array_interface__

    hogs = fill_gpu(torch, leave_bytes=96 << 20)
    try:
        free, _ = torch.cuda.mem_get_info()
        with pytest.raises(w4.OutOfMemoryError) as info:
            w4.gemm(xt, big)
        assert isinstance(info.value, MemoryError) and isinstance(info.value, RuntimeError)
        assert not big._device_copies, "a failed upload left a device copy behind"
        with pytest.raises(w4.OutOfMemoryError, match="out of GPU memory"):
            w4.gemm(OnlyCAI(x_tall), w_wide)
    finally:
        del hogs
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    # Usable again: the weight whose upload failed now uploads and computes correctly, and so does the rest.
    y = w4.gemm(xt, big)
    torch.cuda.synchronize()
    ref = w4.reference_gemm(xt.cpu().numpy(), big)
    assert np.linalg.norm(y.cpu().numpy().astype(np.float64) - ref) / np.linalg.norm(ref) < REL_TOL
    y_tall = w4.gemm(OnlyCAI(x_tall[:1000]), w_wide)
    ref_tall = w4.reference_gemm(x_tall[:1000].cpu().numpy(), w_wide)
    assert np.linalg.norm(y_tall.numpy().astype(np.float64) - ref_tall) / np.linalg.norm(ref_tall) < REL_TOL
    small_problem_ok(torch, rng, small)
    report(f"oom: weight upload and a 16 GiB DeviceArray output into a full GPU ({free >> 20} MiB free) -> "
           "OutOfMemoryError, no partial copy; then the same weight and the others compute correctly")
