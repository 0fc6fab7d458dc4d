// Weight packing (host). Compiled by nvcc only so that the explicit offset formula in packing.h can be
// checked against the cute layout the kernels are built with (w4a16_internal_check_layout).
#include <cstring>

#include "kernel_registry.h"
#include "packing.h"
#include "w4a16/w4a16.h"
#include "weight_layout.hpp"

extern "C" {

size_t w4a16_packed_weight_bytes(int64_t k, int64_t n) {
  if (k <= 0 || n <= 0) return 0;
  return static_cast<size_t>(w4a16::padded_n(n) * k / 2);
}

w4a16_status_t w4a16_pack_weight(const int8_t* q, int64_t k, int64_t n, void* packed) {
  if (!q || !packed) {
    w4a16::set_error_message("w4a16_pack_weight: null pointer");
    return W4A16_INVALID_VALUE;
  }
  if (k <= 0 || k % 64 || n <= 0 || n % 8) {
    w4a16::set_error_message("w4a16_pack_weight: k must be a positive multiple of 64 and n of 8 (k=%lld n=%lld)",
                             (long long)k, (long long)n);
    return W4A16_INVALID_SHAPE;
  }
  const int64_t n_padded = w4a16::padded_n(n);
  auto* out = static_cast<uint8_t*>(packed);
  std::memset(out, 0, w4a16_packed_weight_bytes(k, n));  // padding rows stay zero weights
  for (int64_t kk = 0; kk < k; ++kk) {
    const int8_t* row = q + kk * n;
    for (int64_t nn = 0; nn < n; ++nn) {
      const int v = row[nn];
      if (v < -8 || v > 7) {
        w4a16::set_error_message("w4a16_pack_weight: q[%lld, %lld] = %d is outside the int4 range [-8, 7]",
                                 (long long)kk, (long long)nn, v);
        return W4A16_INVALID_VALUE;
      }
      const int64_t off = w4a16::packed_nibble_offset(nn, kk, n_padded);
      out[off >> 1] |= static_cast<uint8_t>((v & 0xF) << ((off & 1) * 4));
    }
  }
  return W4A16_OK;
}

w4a16_status_t w4a16_unpack_weight(const void* packed, int64_t k, int64_t n, int8_t* q) {
  if (!q || !packed) {
    w4a16::set_error_message("w4a16_unpack_weight: null pointer");
    return W4A16_INVALID_VALUE;
  }
  if (k <= 0 || k % 64 || n <= 0 || n % 8) {
    w4a16::set_error_message("w4a16_unpack_weight: k must be a positive multiple of 64 and n of 8");
    return W4A16_INVALID_SHAPE;
  }
  const int64_t n_padded = w4a16::padded_n(n);
  const auto* in = static_cast<const uint8_t*>(packed);
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t off = w4a16::packed_nibble_offset(nn, kk, n_padded);
      const int nibble = (in[off >> 1] >> ((off & 1) * 4)) & 0xF;
      q[kk * n + nn] = static_cast<int8_t>(nibble >= 8 ? nibble - 16 : nibble);
    }
  }
  return W4A16_OK;
}

// Test hook: OK when packing.h's formula equals the cute layout the kernels use, for every (n, k).
W4A16_API w4a16_status_t w4a16_internal_check_layout(int64_t n_padded, int64_t k) {
  if (n_padded <= 0 || n_padded % 16 || k <= 0 || k % 16) return W4A16_INVALID_SHAPE;
  const auto layout = w4a16::make_packed_weight_layout(static_cast<int>(n_padded), static_cast<int>(k));
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t nn = 0; nn < n_padded; ++nn) {
      const int64_t expect = static_cast<int64_t>(layout(static_cast<int>(nn), static_cast<int>(kk), 0));
      if (expect != w4a16::packed_nibble_offset(nn, kk, n_padded)) {
        w4a16::set_error_message("layout mismatch at n=%lld k=%lld: cute %lld, formula %lld", (long long)nn,
                                 (long long)kk, (long long)expect,
                                 (long long)w4a16::packed_nibble_offset(nn, kk, n_padded));
        return W4A16_INVALID_VALUE;
      }
    }
  }
  return W4A16_OK;
}

}  // extern "C"
