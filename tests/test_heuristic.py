"""The default heuristic at every bucket boundary (csrc/heuristic.cpp)."""

import pytest

import w4a16_gemm as w4

NAMES = {c["name"] for c in w4.list_configs()}


def expect(name):
    if name not in NAMES:
        pytest.skip(f"{name} is not in this (subset) build")
    return name


DECODE = {zeros: [c["name"] for c in w4.list_configs() if c["schedule"] == "decode" and c["zeros"] == zeros]
          for zeros in (False, True)}


# (m, n, k) the decode kernels take (csrc/heuristic.cpp decode_preferred; grid of record and `decode_test mid`,
# H200 2026-12-01/02/03): every layer up to m = 32, k <= 16384 or n <= 8192 up to m = 64 (the global split-K
# fix-up grids), layers of <= 2^26 weights with k <= 8192 up to m = 128.
DECODE_PATH = [
    (1, 4096, 4096), (7, 57344, 8192), (16, 8192, 28672),
    (17, 4096, 4096), (32, 4096, 14336), (32, 28672, 4096), (32, 57344, 8192), (33, 10240, 8192),
    (17, 4096, 28672), (32, 8192, 28672),
    (64, 28672, 4096), (64, 4096, 16384), (33, 4096, 28672), (64, 8192, 28672),
    (65, 4096, 4096), (128, 8192, 8192), (128, 1024, 4096), (100, 6144, 4096),
]


@pytest.mark.parametrize("m,n,k", DECODE_PATH)
@pytest.mark.parametrize("zeros", [False, True])
def test_decode_path(m, n, k, zeros):
    if not DECODE[zeros]:
        pytest.skip("no decode config in this build")
    assert w4.select_config(m, n, k, zero_point=zeros) == DECODE[zeros][0]


def test_decode_configs_serve_up_to_m256():
    assert {c["tile_m"] for c in w4.list_configs() if c["schedule"] == "decode"} <= {256}


# (m, n, k) -> CUTLASS tile, from the config sweep of 2026-11-25 (benchmarks/NOTES.md); 132 SMs.
MODERATE_M = [
    # m 33-64 with k > 16384 on layers wider than 8192 (the decode kernels take the rest): stream-K.
    (33, 16384, 28672, "n128_m64_k64_c1x1_coop_streamk"),
    (64, 12288, 28672, "n128_m64_k64_c1x1_coop_streamk"),
    # m 65-256, k >= 8192 and 128x128 tiles <= half the SMs: stream-K 128x128.
    (65, 4096, 14336, "n128_m128_k64_c1x1_coop_streamk"),
    (256, 4096, 14336, "n128_m128_k64_c1x1_coop_streamk"),
    # ... but not with k = 4096, or with enough tiles: the wave model.
    (256, 4096, 4096, "n64_m128_k64_c1x1_pingpong"),
    (128, 57344, 8192, "n128_m128_k64_c1x1_coop"),
    # Half to 3/4 of a wave on k >= 8192 runs through stream-K (sweep of 2026-12-02, H200): 10240 x 8192, 80 tiles
    # = 0.61 waves: 128x128 at 0.61 x 0.72 = 0.44 < 1 wave of data-parallel 128x128 (40.4 against 45.0 us).
    (128, 10240, 8192, "n128_m128_k64_c1x1_coop_streamk"),
    # m 129-256 (sweep of 2026-12-02, H200): stream-K competes from one wave of its tiles on, and from half a wave
    # on k >= 8192. 10240 x 8192: 80 tiles of 128x256 = 0.61 waves, x 1.25 = 0.76 < 160 tiles of 128x128 = 1.21
    # waves x 0.72 = 0.87 < 1 wave of 128x256 (66.8 against 69.7 and 77.9 us); 57344 x 8192: 3.39 waves of
    # 128x256, 2 + 1.39 x 1.25 = 3.74 < 4 whole ones (311.5 against 337.6 us).
    (256, 10240, 8192, "n128_m256_k64_c2x1_coop_streamk"),
    (256, 57344, 8192, "n128_m256_k64_c2x1_coop_streamk"),
    # ... and not below one wave: 8192 x 8192, 128 tiles of 128x128 (50.0 us against 51.9 for stream-K), or
    # where whole waves waste little: 28672 x 4096, 1.70 waves of 128x256 (84.7 against 88.1).
    (256, 8192, 8192, "n128_m128_k64_c1x1_coop"),
    (256, 28672, 4096, "n128_m256_k64_c2x1_coop"),
    # Below one wave, splitting K pays only on deep K: 4096 x 14336 at m = 300, 96 tiles of 128x128.
    (300, 4096, 14336, "n128_m128_k64_c1x1_coop_streamk"),
    (300, 4096, 4096, "n128_m128_k64_c1x1_coop"),
]


@pytest.mark.parametrize("m,n,k,tile", MODERATE_M)
@pytest.mark.parametrize("zeros", [False, True])
def test_moderate_m_rules(m, n, k, tile, zeros):
    name = expect(f"w4a16_sm90_{tile}_{'sz' if zeros else 's'}")
    assert w4.select_config(m, n, k, zero_point=zeros) == name


def test_wave_quantization_spreads_the_big_tile():
    # m = 512, n = 10240: 160 tiles of 128x256 = 1.21 waves (2 whole ones, cost 2.0); 320 of 128x128 = 3 waves
    # (1.8), 2.42 of stream-K 128x128 (x 0.72 = 1.75); stream-K 128x256 runs all 1.21 waves as its tail (x 1.25 =
    # 1.52). H200 2026-12-02: 118 us against 127 for stream-K 128x128.
    assert w4.select_config(512, 10240, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_streamk_s")
    assert w4.select_config(512, 10240, 8192, zero_point=True) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_streamk_sz")
    # m = 1024, n = 10240: 2.42 waves, one data-parallel and 1.42 as the tail: 1 + 1.42 x 1.25 = 2.78 < 3.0 (221
    # against 247 us for 128x256).
    assert w4.select_config(1024, 10240, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_streamk_s")
    # m = 512, n = 28672: 3.39 waves: 2 + 1.39 x 1.25 = 3.74 < 4 whole ones (161 against 170 us).
    assert w4.select_config(512, 28672, 4096) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_streamk_s")


def test_wave_quantization_keeps_whole_waves():
    # m = 512, n = 6144: 96 tiles of 128x256, less than one wave: stream-K does not compete (it measured 42.8 us
    # against 41.1), 128x256 fits one wave (1.0 < stream-K 128x128's 192 / 132 x 0.72 = 1.05).
    assert w4.select_config(512, 6144, 4096) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")
    # m = 1024, n = 6144: 1.45 waves of 128x256 (tail 1.82, whole 2.0) against 3 nearly full waves of 128x128
    # (1.8; 73.0 us against 77.1 for stream-K 128x256).
    assert w4.select_config(1024, 6144, 4096) == expect("w4a16_sm90_n128_m128_k64_c1x1_coop_s")
    # m = 512, n = 8192: 128 tiles of 128x256 are one full wave (1.0 < 0.97 x 1.25).
    assert w4.select_config(512, 8192, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")
    # m = 512, n = 57344: 6.8 waves, past the four where stream-K 128x256 competes: 7 whole ones.
    assert w4.select_config(512, 57344, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")
    assert w4.select_config(4096, 28672, 4096) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")


def test_large_m_uses_the_big_tile_when_it_fills_the_gpu():
    # 8192 / 128 * 4096 / 256 = 1024 tiles >= 132 SMs.
    assert w4.select_config(4096, 8192, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")


def test_few_tiles_fall_back_to_smaller_tiles():
    # m = 256, n = 8192: 64 tiles of 128x256 would leave half the 132 SMs idle; 128x128 gives 128 >= 132 / 2.
    assert w4.select_config(256, 8192, 8192) == expect("w4a16_sm90_n128_m128_k64_c1x1_coop_s")
    # m = 256, n = 4096: 64 tiles of 128x128 < 66; 64x128 ping-pong doubles that.
    assert w4.select_config(256, 4096, 4096) == expect("w4a16_sm90_n64_m128_k64_c1x1_pingpong_s")
    assert w4.select_config(200, 1024, 4096) == expect("w4a16_sm90_n64_m128_k64_c1x1_pingpong_s")
