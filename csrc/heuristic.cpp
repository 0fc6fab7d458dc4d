// Default config choice from (m, n, k). The rules are data, checked in order, first match wins; each
// names a tile by its (tile_n, tile_m, cluster_n, schedule), and the weights' mode picks the _s or _sz
// instance. Measurements behind the rules are in benchmarks/NOTES.md; tests/test_heuristic.py pins every
// boundary.
#include "heuristic.h"

#include <cstdlib>

#include "kernel_registry.h"

namespace w4a16 {
namespace {

struct TileChoice {
  int tile_n, tile_m, cluster_n, pingpong;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t num_tiles(const w4a16_gemm_args_t& a, const TileChoice& t) {
  return ceil_div(a.n, t.tile_n) * ceil_div(a.m, t.tile_m);
}

int find(const TileChoice& t, bool zeros) {
  for (int i = 0; i < kNumKernels; ++i) {
    const auto& info = kKernels[i]->info;
    if (info.tile_n == t.tile_n && info.tile_m == t.tile_m && info.cluster_n == t.cluster_n &&
        info.pingpong == t.pingpong && static_cast<bool>(info.zeros) == zeros)
      return i;
  }
  return -1;
}

TileChoice preferred_tile(const w4a16_gemm_args_t& a, int sm_count) {
  // Tokens map to the small tile side: the smallest token tile that covers m wastes the fewest MMAs.
  // TensorRT-LLM's profiler lands on 128x16 for m <= 16 on every Llama shape (shared/anchors-h100.md).
  if (a.m <= 16) return {128, 16, 1, 0};
  if (a.m <= 32) return {128, 32, 1, 0};
  if (a.m <= 64) return {128, 64, 1, 0};
  const TileChoice big{128, 256, 2, 0}, mid{128, 128, 1, 0}, narrow{64, 128, 1, 1};
  // Larger tiles reuse more of each loaded byte but leave SMs idle when there are fewer tiles than SMs;
  // take the largest tile that still fills the GPU.
  if (a.m > 128 && num_tiles(a, big) >= sm_count) return big;
  if (num_tiles(a, mid) >= sm_count / 2) return mid;
  return narrow;
}

}  // namespace

int select_config(const w4a16_gemm_args_t& a, int sm_count) {
  const bool zeros = a.zeros != nullptr;
  int best = find(preferred_tile(a, sm_count), zeros);
  if (best >= 0) return best;
  // A subset build (W4A16_KERNELS) may lack the preferred tile: take the smallest token tile that covers m,
  // else the largest token tile there is.
  int best_tile_m = 0;
  for (int i = 0; i < kNumKernels; ++i) {
    const auto& info = kKernels[i]->info;
    if (static_cast<bool>(info.zeros) != zeros) continue;
    const bool covers = info.tile_m >= a.m, best_covers = best_tile_m >= a.m;
    const bool better = best < 0 || (covers && (!best_covers || info.tile_m < best_tile_m)) ||
                        (!covers && !best_covers && info.tile_m > best_tile_m);
    if (better) {
      best = i;
      best_tile_m = info.tile_m;
    }
  }
  return best;
}

}  // namespace w4a16
