// Decode path: a memory-bound W4A16 GEMM for small token counts (m <= kDecodeMaxM), CUDA C++ for sm_90a: mma.sync
// through inline PTX up to m = 16, warpgroup MMA (wgmma, cute's wrappers) above; no CUTLASS collective. It streams
// the packed weights (weight_layout.hpp) through a deep shared-memory ring fed by bulk async copies (TMA,
// mbarriers) and splits K over the CTAs of one thread-block cluster, which reduce their fp32 partials through
// distributed shared memory in a fixed order (or, where clusters would stop a grid short of the SMs, through a
// global workspace, summed by each tile's last CTA in the same order): deterministic, one launch. The default
// heuristic (heuristic.cpp) takes it up to m = 128 where it beats the CUTLASS tiles.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#include "w4a16/w4a16.h"

namespace w4a16 {

constexpr int kDecodeMaxM = 256;
constexpr int kDecodeMmaSyncMaxM = 16;  // mma.sync kernels up to here, warpgroup-MMA (wgmma) kernels above

// True when the decode kernels serve this problem: 1 <= m <= kDecodeMaxM, n % 8 == 0, k % 64 == 0,
// group_size in {64, 128, k}, x / packed_weight / scales / zeros / out 16-byte aligned, ldx and ldo multiples of 8.
bool decode_supports(const w4a16_gemm_args_t& a);
// The problem part of decode_supports (m, n, k, group size), without operands: what a description needs.
bool decode_serves_problem(const w4a16_gemm_args_t& a);

// 0 where the split-K reduction goes through the cluster's distributed shared memory; the counters and partials of
// a global fix-up (DecodeConfig::global_fixup) where the default config takes one.
size_t decode_workspace_size(const w4a16_gemm_args_t& a, int sm_count);

// Launches on stream (asynchronous, no allocation, no synchronisation: CUDA-graph capturable).
// W4A16_CUDA_ERROR (with set_error_message) if the launch fails, W4A16_INVALID_SHAPE if !decode_supports(a).
w4a16_status_t decode_gemm(const w4a16_gemm_args_t& a, int sm_count, void* workspace, cudaStream_t stream);

// Tuning and test hooks.
struct DecodeConfig {
  int warps;    // consumer warps per CTA: 8, or 4 with 16-block mma.sync tiles (m <= 16)
  int tile_nb;  // 16-row weight blocks per CTA: 8, 16 or 32 (mma.sync); 8, or 16 up to 64 tokens (warpgroup MMA)
  int split;    // CTAs along K (= cluster size), 1..8; up to 16 with global_fixup (no cluster)
  int stages;   // shared-memory ring depth in 128-column stages; 0: automatic
  int pdl;      // 0: off; 1: programmatic dependent launch, wait first; 2: PDL, weights requested before the wait
  bool wgmma = false;  // m <= 16: the warpgroup-MMA kernel (16-token tiles) instead of mma.sync (m > 16: always)
  // Split-K partials reduced through the workspace by the last CTA of each tile (an atomic counter per tile),
  // instead of through a cluster's shared memory: no cluster, so grids may take every SM where clusters of
  // `split` stop short (decode_select_config). The same sums in the same order: the same bits.
  bool global_fixup = false;
};
// How many clusters of `split` CTAs (index 1..8) the GPU holds at once at the decode kernels' two residencies
// (cudaOccupancyMaxActiveClusters). The GPCs decide it, not SMs / split, and harvested dies differ: an H200 holds 32
// clusters of 7 CTAs two per SM (224 CTAs) but 30 of 8 (240, not 264).
struct DecodeClusterFit {
  int one_per_sm[9];  // CTAs of ~200 KB rings
  int two_per_sm[9];  // CTAs of ~100 KB rings
};
// The current device's fit, queried once per device; an H200's table scaled to sm_count where the query fails.
DecodeClusterFit decode_cluster_fit(int sm_count);
// fit == nullptr: the H200 table scaled to sm_count (what a CPU-only caller gets).
DecodeConfig decode_select_config(const w4a16_gemm_args_t& a, int sm_count, const DecodeClusterFit* fit = nullptr);
bool decode_config_valid(const DecodeConfig& cfg, long long m);  // (warps, tile_nb, split) compiled for this m
// workspace: decode_config_workspace_size(a, cfg) bytes, 16-byte aligned, zero-filled before its first use (its
// counters are left at zero by every call); may be null where that size is 0.
size_t decode_config_workspace_size(const w4a16_gemm_args_t& a, const DecodeConfig& cfg);
// One line on config c for problem a: kernel, consumer warps, tiles (features x tokens), K split, CTAs and how the
// split-K partials are summed (w4a16_describe_launch).
std::string describe_decode_config(const w4a16_gemm_args_t& a, const DecodeConfig& c);
w4a16_status_t decode_gemm_with_config(const w4a16_gemm_args_t& a, const DecodeConfig& cfg, int sm_count,
                                       void* workspace, cudaStream_t stream);

}  // namespace w4a16
