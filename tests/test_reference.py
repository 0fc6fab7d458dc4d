"""reference_gemm(): the float64 reference every GPU test compares against."""

import numpy as np
import pytest

import w4a16_gemm as w4


def test_reference_matches_explicit_sum(rng):
    m, k, n, g = 3, 128, 16, 64
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    s = (rng.random((k // g, n)) + 0.5).astype(np.float16)
    z = rng.standard_normal((k // g, n)).astype(np.float16)
    qw = w4.QuantizedWeight.from_int4(q, s, z)
    x = rng.standard_normal((m, k)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    ref = w4.reference_gemm(x, qw, bias=bias, alpha=0.5)
    assert ref.dtype == np.float64 and ref.shape == (m, n)
    for i in range(m):
        for j in range(n):
            acc = sum(float(x[i, kk]) * (int(q[kk, j]) * float(s[kk // g, j]) + float(z[kk // g, j])) for kk in range(k))
            assert ref[i, j] == pytest.approx(0.5 * acc + float(bias[j]), rel=1e-9, abs=1e-9)


def test_reference_rejects_mismatches(rng):
    qw = w4.quantize(rng.standard_normal((64, 8)).astype(np.float32), group_size=64)
    with pytest.raises(ValueError, match="K = 32"):
        w4.reference_gemm(np.zeros((2, 32), np.float16), qw)
    with pytest.raises(ValueError, match="bias must have shape"):
        w4.reference_gemm(np.zeros((2, 64), np.float16), qw, bias=np.zeros(4, np.float16))
    with pytest.raises(TypeError, match="QuantizedWeight"):
        w4.reference_gemm(np.zeros((2, 64), np.float16), np.zeros((64, 8)))


def test_reference_dequantizes_exactly():
    # q * s + z with a zero point far below q * s: float32 rounds it (7 + 2^-24 needs 27 bits), float64 does not.
    q = np.full((64, 8), 7, np.int8)
    s = np.ones((1, 8), np.float16)
    z = np.full((1, 8), 2.0 ** -24, np.float16)
    qw = w4.QuantizedWeight.from_int4(q, s, z)
    assert np.all(qw.dequantize(np.float64) == 7 + 2.0 ** -24)
    assert qw.dequantize().dtype == np.float32
    x = np.zeros((1, 64), np.float16)
    x[0, 0] = 1
    assert np.all(w4.reference_gemm(x, qw) == 7 + 2.0 ** -24)
    with pytest.raises(TypeError, match="float32 or float64"):
        qw.dequantize(np.float16)
