// Naive GPU reference for w4a16_only_test: dequantize the unpacked int8 weights to fp32, then a plain
// fp32 GEMM. Deliberately shares nothing with the fast path (no packing, no CUTLASS), so that a wrong
// layout or kernel cannot agree with itself.
#pragma once

#include <cuda_fp16.h>
#include <cstdint>

namespace w4a16_cli {

__global__ void dequantize_kernel(const int8_t* q, const __half* scales, const __half* zeros, int64_t k,
                                  int64_t n, int64_t group_size, float* w) {
  const int64_t total = k * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i / n, nn = i % n;
    const int64_t g = kk / group_size;
    float v = float(q[i]) * __half2float(scales[g * n + nn]);
    if (zeros) v += __half2float(zeros[g * n + nn]);
    w[i] = v;
  }
}

constexpr int kRefTile = 16;

// ref[m, n] = alpha * sum_k x[m, k] * w[k, n] + bias[n], fp32 throughout.
__global__ void reference_gemm_kernel(const __half* x, const float* w, const __half* bias, float alpha, int64_t m,
                                      int64_t n, int64_t k, float* ref) {
  __shared__ float xs[kRefTile][kRefTile];
  __shared__ float ws[kRefTile][kRefTile + 1];
  const int64_t row = blockIdx.y * int64_t(kRefTile) + threadIdx.y;
  const int64_t col = blockIdx.x * int64_t(kRefTile) + threadIdx.x;
  float acc = 0.f;
  for (int64_t k0 = 0; k0 < k; k0 += kRefTile) {
    const int64_t kx = k0 + threadIdx.x, kw = k0 + threadIdx.y;
    xs[threadIdx.y][threadIdx.x] = (row < m && kx < k) ? __half2float(x[row * k + kx]) : 0.f;
    ws[threadIdx.y][threadIdx.x] = (kw < k && col < n) ? w[kw * n + col] : 0.f;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRefTile; ++i) acc += xs[threadIdx.y][i] * ws[i][threadIdx.x];
    __syncthreads();
  }
  if (row < m && col < n) ref[row * n + col] = alpha * acc + (bias ? __half2float(bias[col]) : 0.f);
}

}  // namespace w4a16_cli
