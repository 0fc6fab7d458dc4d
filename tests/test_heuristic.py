"""The default heuristic at every bucket boundary (csrc/heuristic.cpp)."""

import pytest

import w4a16_gemm as w4

NAMES = {c["name"] for c in w4.list_configs()}


def expect(name):
    if name not in NAMES:
        pytest.skip(f"{name} is not in this (subset) build")
    return name


@pytest.mark.parametrize("m", [1, 7, 16])
@pytest.mark.parametrize("zeros", [False, True])
def test_decode_path_up_to_m16(m, zeros):
    mode = "sz" if zeros else "s"
    want = f"w4a16_sm90_decode_m16_{mode}"
    if want not in NAMES:
        want = expect(f"w4a16_sm90_n128_m16_k64_c1x1_coop_{mode}")
    assert w4.select_config(m, 4096, 4096, zero_point=zeros) == want


@pytest.mark.parametrize(
    "m,tile",
    [(17, "n128_m32_k64_c1x1_coop"),
     (32, "n128_m32_k64_c1x1_coop"), (33, "n128_m64_k64_c1x1_coop"), (64, "n128_m64_k64_c1x1_coop"),
     (65, "n128_m128_k64_c1x1_coop"), (128, "n128_m128_k64_c1x1_coop")],
)
@pytest.mark.parametrize("zeros", [False, True])
def test_small_m_buckets(m, tile, zeros):
    name = expect(f"w4a16_sm90_{tile}_{'sz' if zeros else 's'}")
    # N = 57344 gives every tile more than enough CTAs to fill 132 SMs, so only m decides.
    assert w4.select_config(m, 57344, 8192, zero_point=zeros) == name


@pytest.mark.parametrize("m", [33, 64])
def test_m64_tile_needs_wide_layers(m):
    assert w4.select_config(m, 10240, 8192) == expect("w4a16_sm90_n128_m64_k64_c1x1_coop_s")
    assert w4.select_config(m, 8192, 8192) == expect("w4a16_sm90_n128_m32_k64_c1x1_coop_s")


def test_wave_quantization_picks_smaller_tiles():
    # m = 512, n = 10240: 160 tiles of 128x256 = 2 waves (cost 2.0) vs 320 of 128x128 = 3 waves (cost 1.8).
    assert w4.select_config(512, 10240, 8192) == expect("w4a16_sm90_n128_m128_k64_c1x1_coop_s")
    # m = 512, n = 6144: 96 tiles of 128x256 fit one wave.
    assert w4.select_config(512, 6144, 4096) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")


def test_large_m_uses_the_big_tile_when_it_fills_the_gpu():
    # 8192 / 128 * 4096 / 256 = 1024 tiles >= 132 SMs.
    assert w4.select_config(4096, 8192, 8192) == expect("w4a16_sm90_n128_m256_k64_c2x1_coop_s")


def test_few_tiles_fall_back_to_smaller_tiles():
    # m = 256, n = 8192: 64 tiles of 128x256 would leave half the 132 SMs idle; 128x128 gives 128 >= 132 / 2.
    assert w4.select_config(256, 8192, 8192) == expect("w4a16_sm90_n128_m128_k64_c1x1_coop_s")
    # m = 256, n = 4096: 64 tiles of 128x128 < 66; 64x128 ping-pong doubles that.
    assert w4.select_config(256, 4096, 4096) == expect("w4a16_sm90_n64_m128_k64_c1x1_pingpong_s")
    assert w4.select_config(128, 1024, 4096) == expect("w4a16_sm90_n64_m128_k64_c1x1_pingpong_s")
