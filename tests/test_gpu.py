"""The kernels against the float64 reference on fresh random data (marker `gpu`; skipped without an SM90 GPU).

Every output is poisoned with NaN first where the test owns the buffer, so an element the kernel never
writes fails the check. Tolerance: ||out - ref|| / ||ref|| < 2e-3 (fp16 output rounding is ~3e-4).
"""

import functools
import os
import subprocess

import numpy as np
import pytest

import w4a16_gemm as w4
from w4a16_gemm import _cli
from conftest import make_weight, rel_err

pytestmark = pytest.mark.gpu
REL_TOL = 2e-3


def make_x(rng, m, k):
    return rng.uniform(-1, 1, size=(m, k)).astype(np.float16)


SHAPES = [
    # m, n, k, group_size, zeros, bias, alpha
    (1, 8, 64, 64, False, False, 1.0),
    (1, 4096, 4096, 128, False, True, 1.0),
    (3, 72, 192, 64, False, False, 1.0),
    (7, 136, 320, 64, True, True, 0.5),
    (13, 1000, 1024, 128, False, True, 2.0),
    (16, 6144, 4096, 128, True, False, 1.0),
    (5, 12288, 1024, 64, False, False, 1.0),     # decode grids sized for two CTAs per SM (192 CTAs)
    (12, 12288, 1024, 128, False, True, 1.0),    # ... m > 8: the flavour with the scales applied in fp16
    (17, 24, 256, None, False, True, 1.0),
    (33, 520, 512, 128, True, True, 1.0),
    (100, 264, 384, 64, False, False, -1.5),
    (129, 1032, 1024, None, True, False, 1.0),
    (257, 4096, 1024, 128, False, True, 1.0),
    (300, 200, 2048, 128, True, True, 0.25),
    (1000, 2056, 512, 64, False, True, 1.0),
]


@pytest.mark.parametrize("m,n,k,group_size,zeros,use_bias,alpha", SHAPES)
def test_numpy_matches_reference(rng, m, n, k, group_size, zeros, use_bias, alpha):
    qw = make_weight(rng, k, n, group_size, zeros)
    x = make_x(rng, m, k)
    bias = rng.standard_normal(n).astype(np.float16) if use_bias else None
    out = w4.gemm(x, qw, bias=bias, alpha=alpha)
    assert out.dtype == np.float16 and out.shape == (m, n)
    assert rel_err(out, w4.reference_gemm(x, qw, bias=bias, alpha=alpha)) < REL_TOL


def test_numpy_out_is_filled_in_place(rng):
    qw = make_weight(rng, 256, 40, 128, False)
    x = make_x(rng, 5, 256)
    out = np.full((5, 40), np.nan, np.float16)
    assert w4.gemm(x, qw, out=out) is out
    assert rel_err(out, w4.reference_gemm(x, qw)) < REL_TOL


CONFIGS = w4.list_configs()


@pytest.mark.parametrize("config", CONFIGS, ids=[c["name"] for c in CONFIGS])
@pytest.mark.parametrize("group_size", [64, 128])
def test_every_config(rng, config, group_size):
    torch = pytest.importorskip("torch")
    # A ragged last tile in every dimension; the decode kernel serves m <= tile_m only.
    m = config["tile_m"] - 3 if config["schedule"] == "decode" else config["tile_m"] + 3
    n = 2 * config["tile_n"] * config["cluster_n"] + 8
    k = 512
    qw = make_weight(rng, k, n, group_size, config["zeros"])
    x = make_x(rng, m, k)
    bias = rng.standard_normal(n).astype(np.float16)
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(torch.from_numpy(x).cuda(), qw, bias=torch.from_numpy(bias).cuda(), alpha=0.75, out=out,
            config=config["name"])
    torch.cuda.synchronize()
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw, bias=bias, alpha=0.75)) < REL_TOL


# The warpgroup-MMA decode kernels (m 17-256: token tiles of 32, 64 and 128, csrc/decode_gemm.cu) through the
# decode config, with strided x and out: odd chunk counts (a stage of one chunk multiplies zero weights), split-K
# clusters, per-column scales, the 16-block tiles of wide layers (one and two CTAs per SM), several token tiles;
# bit-identical twice.
WGMMA_DECODE = [
    # m, n, k, group_size, zeros
    (17, 136, 192, 64, False),
    (32, 4096, 4096, 128, True),
    (48, 264, 4160, None, False),
    (64, 16384, 512, 128, False),
    (32, 8200, 576, 64, False),   # 16-block tiles from N = 8192 on: a ragged last tile, 9 chunks
    (12, 8184, 640, 128, True),   # m 9-16 on the WG kernel, 16-block tiles (two per SM: chunk batches)
    (24, 12288, 1024, 128, True),  # 16-block tiles of 32 tokens, two per SM (chunk batches), zero points
    (65, 1032, 1024, 64, True),
    (128, 4096, 4096, 128, False),
    (200, 520, 640, 128, True),
]


@pytest.mark.parametrize("m,n,k,group_size,zeros", WGMMA_DECODE)
def test_wgmma_decode_kernels(rng, torch, m, n, k, group_size, zeros):
    name = next((c["name"] for c in CONFIGS if c["schedule"] == "decode" and c["zeros"] == zeros), None)
    if name is None:
        pytest.skip("no decode config in this build")
    qw = make_weight(rng, k, n, group_size, zeros)
    x = make_x(rng, m, k)
    bias = rng.standard_normal(n).astype(np.float16)
    x_wide = torch.full((m, k + 24), float("nan"), dtype=torch.float16, device="cuda")
    x_wide[:, :k] = torch.from_numpy(x).cuda()
    outs = []
    for _ in range(2):
        out_wide = torch.full((m, n + 8), float("nan"), dtype=torch.float16, device="cuda")
        w4.gemm(x_wide[:, :k], qw, bias=torch.from_numpy(bias).cuda(), alpha=0.5, out=out_wide[:, :n], config=name)
        torch.cuda.synchronize()
        assert torch.isnan(out_wide[:, n:]).all()  # nothing written past n
        outs.append(out_wide[:, :n].cpu())
    assert torch.equal(outs[0], outs[1])
    assert rel_err(outs[0].numpy(), w4.reference_gemm(x, qw, bias=bias, alpha=0.5)) < REL_TOL


INF_IN_X = [
    # m, n, k, group_size, column of the Inf
    (5, 256, 192, 64, 189),
    (12, 256, 192, 64, 189),
    (20, 256, 192, 64, 189),
    (40, 256, 192, 192, 189),
    (100, 256, 192, 64, 189),
    # m <= 8 on a 70B o-sized layer: warps of 4 n-blocks (the automatic config), weights as subnormals with offset
    # sums (Inf - Inf), where the warp sums its outputs again on an exact fp32 path
    (3, 8192, 8192, 128, 4100),
]


@pytest.mark.parametrize("m,n,k,group_size,k_inf", INF_IN_X)
def test_inf_in_x_stays_inf(rng, torch, m, n, k, group_size, k_inf):
    # K = 192: three chunks of 64, so the warpgroup-MMA kernels' last stage holds one chunk, and its batch
    # multiplies zero weights with an x box that must be zeros, not a copy of real columns (0 x Inf = NaN).
    # No weight is zero, so an Inf in x makes every output of its row +-Inf, in the reference too.
    name = next((c["name"] for c in CONFIGS if c["schedule"] == "decode" and not c["zeros"]), None)
    if name is None:
        pytest.skip("no decode config in this build")
    q = rng.integers(1, 8, size=(k, n), dtype=np.int8) * rng.choice(np.array([-1, 1], dtype=np.int8), size=(k, n))
    s = ((rng.random((k // group_size, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    qw = w4.QuantizedWeight.from_int4(q, s, None, group_size=group_size)
    x = make_x(rng, m, k)
    x[0, k_inf] = np.inf
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(torch.from_numpy(x).cuda(), qw, out=out, config=name)
    torch.cuda.synchronize()
    got = out.cpu().numpy().astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = w4.reference_gemm(x, qw)
    assert np.isinf(ref[0]).all()
    assert np.array_equal(got[0], ref[0]), f"{np.count_nonzero(np.isnan(got[0]))} NaN in the Inf row"
    assert rel_err(got[1:], ref[1:]) < REL_TOL


CUTLASS_CONFIGS = [c for c in CONFIGS if c["schedule"] != "decode"]


@pytest.mark.parametrize("config", CUTLASS_CONFIGS, ids=[c["name"] for c in CUTLASS_CONFIGS])
def test_every_config_over_several_waves(rng, config):
    # More output tiles than two waves of 132 SMs, ragged in both directions: the tile scheduler walks them in
    # swizzled stripes (csrc/heuristic.cpp select_tile_order), which one-wave problems never do.
    torch = pytest.importorskip("torch")
    tiles_m = 3
    m = (tiles_m - 1) * config["tile_m"] + 5
    n = (2 * 132 // tiles_m + 1) * config["tile_n"] * config["cluster_n"] + 8
    k = 256
    qw = make_weight(rng, k, n, 64, config["zeros"])
    x = make_x(rng, m, k)
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(torch.from_numpy(x).cuda(), qw, out=out, config=config["name"])
    torch.cuda.synchronize()
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw)) < REL_TOL


STREAMK_CONFIGS = [c for c in CUTLASS_CONFIGS if c.get("stream_k")]


@functools.lru_cache(maxsize=2)
def deep_k_weight(zeros):
    # 10120 features = 80 tiles of 128 (79 and a ragged one); k = 8192.
    return make_weight(np.random.default_rng(8192), 8192, 80 * 128 - 120, 128, zeros)


@pytest.mark.parametrize("config", STREAMK_CONFIGS, ids=[c["name"] for c in STREAMK_CONFIGS])
def test_stream_k_below_one_wave(config):
    # 80 tiles = 0.61 waves of 132 SMs on k = 8192: the library has CUTLASS spread their K over every SM
    # (csrc/heuristic.cpp select_streamk_decomposition), so most tiles are summed from the partials of two or
    # three CTAs in the workspace, in a fixed order: bit-identical from call to call.
    torch = pytest.importorskip("torch")
    qw = deep_k_weight(config["zeros"])
    m = config["tile_m"] - 3
    x = make_x(np.random.default_rng(m), m, 8192)
    xt = torch.from_numpy(x).cuda()
    out = torch.full((m, qw.shape[1]), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(xt, qw, out=out, config=config["name"])
    again = w4.gemm(xt, qw, config=config["name"])
    torch.cuda.synchronize()
    assert torch.equal(out, again)
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw)) < REL_TOL


@pytest.mark.parametrize("m,zeros", [(1, False), (5, False), (12, True)])
def test_global_split_k_fixup_shares_the_workspace(rng, torch, m, zeros):
    # 8192 x 8192 at m <= 16: the decode kernel's default grid (16-block tiles x split 8 = 256 CTAs, more than the
    # GPU holds as clusters of 8) reduces its split-K partials through the stream's workspace, whose counters must
    # read zero when a call starts and be left at zero. A stream-K call on the same stream and workspace (its
    # fix-up flags come after the counters) in between must not disturb them: same bits before and after.
    qw = make_weight(rng, 8192, 8192, 128, zeros)
    x = make_x(rng, m, 8192)
    xt = torch.from_numpy(x).cuda()
    out = torch.full((m, 8192), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(xt, qw, out=out)
    repeat = w4.gemm(xt, qw)
    torch.cuda.synchronize()
    assert torch.equal(out, repeat)
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw)) < REL_TOL
    streamk = next((c for c in STREAMK_CONFIGS if c["zeros"] == zeros), None)
    if streamk is not None:
        wk = deep_k_weight(zeros)
        xk = torch.from_numpy(make_x(rng, streamk["tile_m"] - 3, 8192)).cuda()
        w4.gemm(xk, wk, config=streamk["name"])
    after = w4.gemm(xt, qw)
    torch.cuda.synchronize()
    assert torch.equal(out, after)


@pytest.mark.parametrize("decomposition", ["heuristic", "streamk"])
def test_streamk_decomposition_override(decomposition):
    # W4A16_STREAMK_DECOMPOSITION is read once per process: the CLI checks each setting in its own. m = 100 on
    # 10240 x 8192 is stream-K 128x128's ground (80 tiles = 0.61 waves); the CLI checks against its reference.
    env = dict(os.environ, W4A16_STREAMK_DECOMPOSITION=decomposition)
    r = subprocess.run([_cli.executable_path(), "100", "10240", "8192", "--iters", "1", "--warmup", "0"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("raster,swizzle", [("n", "1"), ("m", "2"), ("auto", "4"), ("m", "8")])
def test_tile_order_overrides(raster, swizzle):
    # W4A16_TILE_RASTER / W4A16_TILE_SWIZZLE are read once per process: the CLI checks each setting in its own.
    env = dict(os.environ, W4A16_TILE_RASTER=raster, W4A16_TILE_SWIZZLE=swizzle)
    r = subprocess.run([_cli.executable_path(), "1000", "8200", "512", "--iters", "1", "--warmup", "0"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


def test_config_of_the_wrong_mode_is_refused(rng):
    qw = make_weight(rng, 128, 16, 64, True)
    scale_only = next(c["name"] for c in CONFIGS if not c["zeros"])
    with pytest.raises(ValueError, match="zero-point|scale-only"):
        w4.gemm(make_x(rng, 2, 128), qw, config=scale_only)


def test_torch_in_torch_out_on_the_current_stream(rng, torch):
    qw = make_weight(rng, 1024, 3072, 128, True)
    x = make_x(rng, 37, 1024)
    bias = rng.standard_normal(3072).astype(np.float16)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        xt = torch.from_numpy(x).cuda()
        yt = w4.gemm(xt, qw, bias=torch.from_numpy(bias).cuda())
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float16 and yt.device == xt.device
    stream.synchronize()
    assert rel_err(yt.cpu().numpy(), w4.reference_gemm(x, qw, bias=bias)) < REL_TOL


def test_explicit_stream_and_out(rng, torch):
    qw = make_weight(rng, 512, 256, 64, False)
    x = make_x(rng, 9, 512)
    out = torch.full((9, 256), float("nan"), dtype=torch.float16, device="cuda")
    s = torch.cuda.Stream()
    xt = torch.from_numpy(x).cuda()
    torch.cuda.synchronize()
    assert w4.gemm(xt, qw, out=out, stream=s) is out
    s.synchronize()
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw)) < REL_TOL


def test_strided_rows_are_read_in_place(rng, torch):
    qw = make_weight(rng, 256, 64, 128, False)
    big = torch.from_numpy(make_x(rng, 6, 512)).cuda()
    x = big[:, 64:320]  # row stride 512, 16-byte aligned start
    out_big = torch.full((6, 128), float("nan"), dtype=torch.float16, device="cuda")
    out = out_big[:, :64]
    w4.gemm(x, qw, out=out)
    torch.cuda.synchronize()
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x.cpu().numpy(), qw)) < REL_TOL
    assert torch.isnan(out_big[:, 64:]).all(), "wrote outside out's columns"


def test_unsupported_layouts_are_refused(rng, torch):
    qw = make_weight(rng, 256, 64, 128, False)
    xt = torch.from_numpy(make_x(rng, 4, 512)).cuda()
    with pytest.raises(ValueError, match="16-byte aligned"):
        w4.gemm(xt[:, 1:257], qw)
    with pytest.raises(ValueError, match="contiguous along its last dimension"):
        w4.gemm(xt[:, ::2], qw)
    with pytest.raises(ValueError, match="shape"):
        w4.gemm(xt[:, :128], qw)
    with pytest.raises(TypeError, match="float16"):
        w4.gemm(xt[:, :256].float(), qw)
    with pytest.raises(ValueError, match="host"):
        w4.gemm(xt[:, :256].contiguous(), qw, bias=np.zeros(64, np.float16))
    with pytest.raises(ValueError, match="same GPU"):
        w4.gemm(xt[:, :256].contiguous(), qw, out=np.zeros((4, 64), np.float16))
    with pytest.raises(ValueError, match="overlaps"):
        buf = torch.zeros((4, 256), dtype=torch.float16, device="cuda")
        w4.gemm(buf, qw, out=buf[:, :64])


def test_foreign_device_array_gives_a_device_array(rng, torch):
    class OnlyCAI:  # a library w4a16_gemm knows nothing about
        def __init__(self, t):
            self.t = t
            self.__cuda_array_interface__ = t.__cuda_array_interface__

    qw = make_weight(rng, 256, 64, 64, True)
    x = make_x(rng, 3, 256)
    y = w4.gemm(OnlyCAI(torch.from_numpy(x).cuda()), qw)
    assert isinstance(y, w4.DeviceArray) and y.shape == (3, 64)
    torch.cuda.synchronize()
    ref = w4.reference_gemm(x, qw)
    assert rel_err(y.numpy(), ref) < REL_TOL
    assert rel_err(torch.from_dlpack(y).cpu().numpy(), ref) < REL_TOL
    assert y.__cuda_array_interface__["data"][0] == y.ptr


def test_dlpack_only_input(rng, torch):
    class OnlyDLPack:
        def __init__(self, t):
            self.t = t

        def __dlpack__(self, stream=None):
            return self.t.__dlpack__()

        def __dlpack_device__(self):
            return self.t.__dlpack_device__()

    qw = make_weight(rng, 128, 32, 64, False)
    x = make_x(rng, 2, 128)
    y = w4.gemm(OnlyDLPack(torch.from_numpy(x).cuda()), qw)
    torch.cuda.synchronize()
    assert rel_err(np.asarray(y), w4.reference_gemm(x, qw)) < REL_TOL


def test_repeated_calls_are_bit_identical(rng, torch):
    qw = make_weight(rng, 4096, 4096, 128, False)
    xt = torch.from_numpy(make_x(rng, 16, 4096)).cuda()
    first = w4.gemm(xt, qw)
    for _ in range(3):
        assert torch.equal(first, w4.gemm(xt, qw))


def test_empty_batch_on_device(rng, torch):
    qw = make_weight(rng, 128, 16, 64, False)
    y = w4.gemm(torch.zeros((0, 128), dtype=torch.float16, device="cuda"), qw)
    assert tuple(y.shape) == (0, 16)


@pytest.mark.parametrize("m", [1, 16, 256])
@pytest.mark.parametrize("n,k", [(6144, 4096), (4096, 14336)])
def test_llama_shapes(rng, torch, m, n, k):
    qw = make_weight(rng, k, n, 128, False)
    x = make_x(rng, m, k)
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
    w4.gemm(torch.from_numpy(x).cuda(), qw, out=out)
    torch.cuda.synchronize()
    assert rel_err(out.cpu().numpy(), w4.reference_gemm(x, qw)) < REL_TOL


def test_device_info_on_the_gpu():
    info = w4.device_info()
    assert info["supported"] and info["compute_capability"] == (9, 0) and info["sm_count"] > 0
