"""quantize(), QuantizedWeight.from_int4() and dequantize(): error bounds, round trips, bad input."""

import numpy as np
import pytest

import w4a16_gemm as w4


@pytest.mark.parametrize("group_size", [64, 128, None])
def test_symmetric_error_is_within_half_a_step(rng, group_size):
    k, n = 256, 48
    weight = rng.standard_normal((k, n)).astype(np.float32)
    qw = w4.quantize(weight, group_size=group_size)
    g = qw.group_size
    assert g == (k if group_size is None else group_size)
    assert qw.shape == (k, n) and qw.scales.shape == (k // g, n) and qw.zeros is None
    assert qw.qvalues.dtype == np.int8 and qw.qvalues.min() >= -8 and qw.qvalues.max() <= 7
    step = np.repeat(qw.scales.astype(np.float64), g, axis=0)
    err = np.abs(qw.dequantize().astype(np.float64) - weight)
    assert np.all(err <= 0.5 * step * (1 + 1e-3) + 1e-6)
    # Symmetric: the largest magnitude of each group is (nearly) exactly representable.
    amax = np.abs(weight.reshape(k // g, g, n)).max(axis=1)
    np.testing.assert_allclose(qw.scales.astype(np.float64) * 7, amax, rtol=2e-3)


def test_zero_point_error_and_range(rng):
    k, n = 128, 16
    weight = (rng.random((k, n)) * 3 + 1).astype(np.float32)  # all positive: zero points matter
    qw = w4.quantize(weight, group_size=64, zero_point=True)
    assert qw.zeros is not None and qw.zeros.shape == (2, n)
    step = np.repeat(qw.scales.astype(np.float64), 64, axis=0)
    err = np.abs(qw.dequantize().astype(np.float64) - weight)
    assert np.all(err <= 0.5 * step * 1.01 + 2e-3)
    sym = w4.quantize(weight, group_size=64)
    assert np.abs(qw.dequantize() - weight).mean() < np.abs(sym.dequantize() - weight).mean()


def test_from_int4_round_trip(rng):
    k, n, g = 192, 24, 64
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    s = (rng.random((k // g, n)) + 0.5).astype(np.float16)
    z = rng.standard_normal((k // g, n)).astype(np.float16)
    qw = w4.QuantizedWeight.from_int4(q, s, z)
    assert qw.group_size == g
    np.testing.assert_array_equal(qw.qvalues, q)
    np.testing.assert_array_equal(qw.scales, s)
    np.testing.assert_array_equal(qw.zeros, z)
    expect = q.astype(np.float32) * np.repeat(s.astype(np.float32), g, 0) + np.repeat(z.astype(np.float32), g, 0)
    np.testing.assert_array_equal(qw.dequantize(), expect)


def test_views_are_read_only(rng):
    qw = w4.quantize(rng.standard_normal((64, 8)).astype(np.float32), group_size=64)
    with pytest.raises(ValueError):
        qw.qvalues[0, 0] = 1
    with pytest.raises(ValueError):
        qw.scales[0, 0] = 1


def test_all_zero_group_quantizes_to_zero():
    qw = w4.quantize(np.zeros((64, 8), dtype=np.float32), group_size=64)
    assert not qw.qvalues.any() and np.all(qw.dequantize() == 0)


def test_direct_construction_is_refused():
    with pytest.raises(TypeError, match="from_int4"):
        w4.QuantizedWeight(np.zeros((64, 8), np.int8), np.ones((1, 8), np.float16), None, 64)


@pytest.mark.parametrize(
    "weight,kwargs,exc,match",
    [
        (np.zeros((64, 8), np.int32), {}, TypeError, "float"),
        (np.zeros((64,), np.float32), {}, ValueError, "2-D"),
        (np.zeros((96, 8), np.float32), {"group_size": 64}, ValueError, "multiple of 64"),
        (np.zeros((64, 12), np.float32), {"group_size": 64}, ValueError, "multiple of 8"),
        (np.zeros((256, 8), np.float32), {"group_size": 32}, ValueError, "group_size = 32"),
        (np.zeros((192, 8), np.float32), {"group_size": 128}, ValueError, "not a multiple of group_size"),
        (np.full((64, 8), np.nan, np.float32), {"group_size": 64}, ValueError, "NaN or Inf"),
        (np.full((64, 8), np.inf, np.float32), {"group_size": 64}, ValueError, "NaN or Inf"),
        (np.full((64, 8), 1e6, np.float32), {"group_size": 64}, ValueError, "float16"),
        ([[1.0]], {}, ValueError, "multiple of 64"),
        ("weights", {}, TypeError, "float"),
    ],
)
def test_quantize_rejects_bad_input(weight, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        w4.quantize(weight, **kwargs)


def test_from_int4_rejects_bad_input(rng):
    q = rng.integers(-8, 8, size=(128, 16), dtype=np.int8)
    s = np.ones((2, 16), np.float16)
    with pytest.raises(TypeError, match="integer"):
        w4.QuantizedWeight.from_int4(q.astype(np.float32), s)
    bad = q.copy()
    bad[7, 3] = 9
    with pytest.raises(ValueError, match=r"qvalues\[7, 3\] = 9"):
        w4.QuantizedWeight.from_int4(bad, s)
    bad[7, 3] = -9
    with pytest.raises(ValueError, match="int4 range"):
        w4.QuantizedWeight.from_int4(bad, s)
    with pytest.raises(ValueError, match="scales must have shape"):
        w4.QuantizedWeight.from_int4(q, np.ones((2, 8), np.float16))
    with pytest.raises(ValueError, match="does not divide"):
        w4.QuantizedWeight.from_int4(q, np.ones((3, 16), np.float16))
    with pytest.raises(ValueError, match="zeros must have shape"):
        w4.QuantizedWeight.from_int4(q, s, zeros=np.ones((1, 16), np.float16))
    with pytest.raises(ValueError, match="NaN or Inf"):
        w4.QuantizedWeight.from_int4(q, np.full((2, 16), np.nan, np.float16))
    with pytest.raises(ValueError, match="group_size = 32"):
        w4.QuantizedWeight.from_int4(q, np.ones((4, 16), np.float16))
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        w4.QuantizedWeight.from_int4(q[:64].repeat(3, axis=0), np.ones((1, 16), np.float16), group_size=128)
