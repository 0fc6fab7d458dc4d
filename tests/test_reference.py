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
