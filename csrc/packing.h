// Host-side view of the packed weight layout (weight_layout.hpp holds the contract and its reasons).
#pragma once

#include <cstdint>

namespace w4a16 {

constexpr int64_t kWeightBlock = 16;  // rows (n) and columns (k) of one 128-byte block

inline int64_t padded_n(int64_t n) { return (n + kWeightBlock - 1) / kWeightBlock * kWeightBlock; }

// Nibble offset of weight (n, k) in a packed buffer with n_padded / 16 blocks per k-block row.
// Byte offset / 2; the even nibble of a byte is its low half (cutlass::int4b_t packing).
inline int64_t packed_nibble_offset(int64_t n, int64_t k, int64_t n_padded) {
  const int64_t block = (n >> 4) + (k >> 4) * (n_padded >> 4);
  const int r = static_cast<int>(n & 15), c = static_cast<int>(k & 15);
  const int thread = (r & 7) * 4 + ((c & 7) >> 1);            // mma.m16n8k16 A-fragment owner
  const int value = (c & 1) + 2 * (r >> 3) + 4 * (c >> 3);    // its index in the thread's 8 values
  const int slot = (value & 1) * 4 + (value >> 1);            // [0,2,4,6,1,3,5,7] shuffle
  return block * 256 + thread * 8 + slot;
}

}  // namespace w4a16
