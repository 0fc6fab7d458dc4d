"""The packed layout: the explicit formula, the cute layout the kernels use, and round trips."""

import numpy as np
import pytest

from w4a16_gemm import _core


def packed_offsets_numpy(k: int, n: int) -> np.ndarray:
    """Nibble offset of every (k, n), written from the layout's description in csrc/weight_layout.hpp,
    independently of csrc/packing.h."""
    n_pad = (n + 15) // 16 * 16
    kk, nn = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    block = nn // 16 + (kk // 16) * (n_pad // 16)
    row, col = nn % 16, kk % 16
    lane = (row % 8) * 4 + (col % 8) // 2
    value = (col % 2) + 2 * (row // 8) + 4 * (col // 8)
    slot = np.array([0, 4, 1, 5, 2, 6, 3, 7])[value]  # value v sits in slot ValueShuffle(v)
    return block * 256 + lane * 8 + slot


def pack_numpy(q: np.ndarray) -> np.ndarray:
    k, n = q.shape
    n_pad = (n + 15) // 16 * 16
    nibbles = np.zeros(n_pad * k, dtype=np.uint8)
    nibbles[packed_offsets_numpy(k, n).ravel()] = (q.astype(np.int16) & 0xF).ravel().astype(np.uint8)
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


@pytest.mark.parametrize("n_padded,k", [(16, 16), (48, 128), (128, 64), (4096, 64)])
def test_formula_matches_cute_layout(n_padded, k):
    status, message = _core.check_layout(n_padded, k)
    assert status == 0, message


@pytest.mark.parametrize("k,n", [(64, 8), (64, 16), (128, 24), (192, 72), (256, 1000)])
def test_pack_matches_independent_numpy_packing(rng, k, n):
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    packed = _core.pack_weight(q)
    assert packed.size == _core.packed_weight_bytes(k, n) == (n + 15) // 16 * 16 * k // 2
    np.testing.assert_array_equal(packed, pack_numpy(q))


@pytest.mark.parametrize("k,n", [(64, 8), (128, 40), (512, 4096 + 8)])
def test_pack_unpack_round_trip(rng, k, n):
    q = rng.integers(-8, 8, size=(k, n), dtype=np.int8)
    np.testing.assert_array_equal(_core.unpack_weight(_core.pack_weight(q), k, n), q)


def test_thread_fragment_is_one_word():
    # Lane t's 8 values of a 16x16 block are the 32-bit word at byte 4t: the property the kernels rely on.
    k, n = 16, 16
    offsets = packed_offsets_numpy(k, n)
    for lane in range(32):
        g, q = lane // 4, lane % 4
        coords = [(r, c) for r in (g, g + 8) for c in (2 * q, 2 * q + 1, 2 * q + 8, 2 * q + 9)]
        assert sorted(offsets[c, r] for r, c in coords) == list(range(8 * lane, 8 * lane + 8))


def test_padding_rows_are_zero(rng):
    q = rng.integers(-8, 8, size=(64, 8), dtype=np.int8)
    q[q == 0] = 1
    packed = _core.pack_weight(q)
    offsets = set(packed_offsets_numpy(64, 8).ravel().tolist())
    nibbles = np.stack([packed & 0xF, packed >> 4], axis=1).ravel()
    padding = [i for i in range(nibbles.size) if i not in offsets]
    assert len(padding) == 64 * 8 and not nibbles[padding].any()


def test_pack_rejects_out_of_range():
    q = np.zeros((64, 8), dtype=np.int8)
    q[3, 5] = 8
    with pytest.raises(ValueError, match=r"q\[3, 5\] = 8"):
        _core.pack_weight(q)


@pytest.mark.parametrize("k,n", [(63, 8), (64, 12), (0, 8)])
def test_pack_rejects_bad_shapes(k, n):
    with pytest.raises(ValueError, match="multiple"):
        _core.pack_weight(np.zeros((k, n), dtype=np.int8))
