"""Every argument check of gemm() that needs no GPU, and the dedicated error when there is none."""

import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import has_gpu


@pytest.fixture
def qw(rng):
    return w4.quantize(rng.standard_normal((128, 16)).astype(np.float32), group_size=64)


@pytest.fixture
def x(rng):
    return rng.standard_normal((4, 128)).astype(np.float16)


@pytest.mark.parametrize(
    "make_args,exc,match",
    [
        (lambda x, qw: (x.astype(np.float32), qw), TypeError, "x must be float16"),
        (lambda x, qw: (x[0], qw), ValueError, "2-D"),
        (lambda x, qw: (x[:, :64], qw), ValueError, "K = 64 columns"),
        (lambda x, qw: (x.tolist(), qw), TypeError, "numpy array or a GPU array"),
        (lambda x, qw: (x, np.zeros((128, 16))), TypeError, "QuantizedWeight"),
    ],
)
def test_bad_x_or_w(x, qw, make_args, exc, match):
    with pytest.raises(exc, match=match):
        w4.gemm(*make_args(x, qw))


def test_bad_bias(x, qw):
    with pytest.raises(TypeError, match="bias must be float16"):
        w4.gemm(x, qw, bias=np.zeros(16, np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(16,\)"):
        w4.gemm(x, qw, bias=np.zeros(8, np.float16))


def test_bad_out(x, qw):
    with pytest.raises(ValueError, match=r"out must have shape \(4, 16\)"):
        w4.gemm(x, qw, out=np.zeros((4, 8), np.float16))
    with pytest.raises(TypeError, match="out must be float16"):
        w4.gemm(x, qw, out=np.zeros((4, 16), np.float32))
    with pytest.raises(ValueError, match="numpy array when x is"):
        w4.gemm(x, qw, out=[[0.0] * 16] * 4)
    ro = np.zeros((4, 16), np.float16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        w4.gemm(x, qw, out=ro)


@pytest.mark.parametrize("alpha,exc", [(float("nan"), ValueError), (float("inf"), ValueError), ("2", TypeError),
                                       (None, TypeError)])
def test_bad_alpha(x, qw, alpha, exc):
    with pytest.raises(exc, match="alpha"):
        w4.gemm(x, qw, alpha=alpha)


@pytest.mark.parametrize("config,exc,match", [("no_such_kernel", ValueError, "not in this build"),
                                              (10_000, ValueError, "out of range"), (-1, ValueError, "out of range"),
                                              (1.5, TypeError, "config must be")])
def test_bad_config(x, qw, config, exc, match):
    with pytest.raises(exc, match=match):
        w4.gemm(x, qw, config=config)


def test_empty_batch_gives_empty_result(qw):
    out = w4.gemm(np.zeros((0, 128), np.float16), qw)
    assert out.shape == (0, 16) and out.dtype == np.float16


@pytest.mark.skipif(has_gpu(), reason="checks the behaviour of a machine without an SM90 GPU")
def test_no_gpu_raises_dedicated_error(x, qw):
    assert issubclass(w4.NoSM90DeviceError, RuntimeError)
    info = w4.device_info()
    assert info["supported"] is False and info["reason"]
    with pytest.raises(w4.NoSM90DeviceError, match="SM90|GPU|device"):
        w4.gemm(x, qw)


def test_select_config_rejects_bad_problems():
    with pytest.raises(ValueError, match="group_size"):
        w4.select_config(16, 4096, 4096, group_size=32)
