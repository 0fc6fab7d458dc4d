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
  int tile_n, tile_m, cluster_n, schedule;
  int stream_k = 0;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t num_tiles(const w4a16_gemm_args_t& a, const TileChoice& t) {
  return ceil_div(a.n, t.tile_n) * ceil_div(a.m, t.tile_m);
}

int find(const TileChoice& t, bool zeros) {
  for (int i = 0; i < kNumKernels; ++i) {
    const auto& info = kKernels[i]->info;
    if (info.tile_n == t.tile_n && info.tile_m == t.tile_m && info.cluster_n == t.cluster_n &&
        info.schedule == t.schedule && info.stream_k == t.stream_k && static_cast<bool>(info.zeros) == zeros)
      return i;
  }
  return -1;
}

// Relative cost of one CTA tile over the same K, from the config sweep of 2026-11-25 (benchmarks/NOTES.md):
// at M = 4096 on 57344 x 8192, where every config fills the GPU, 128x128 took 1.20x the time of 128x256 for
// half the work (0.60 per tile) and 64x128 ping-pong 1.80x for a quarter (0.45 per tile).
struct TileCost {
  TileChoice tile;
  double cost;
};
constexpr TileCost kLargeMTiles[] = {
    {{128, 256, 2, 0}, 1.00},
    {{128, 128, 1, 0}, 0.60},
    {{64, 128, 1, 1}, 0.45},
};

// Token counts up to which the decode kernel beats every CUTLASS tile (benchmarks/NOTES.md).
constexpr int64_t kDecodeBelowM = 16;

TileChoice preferred_tile(const w4a16_gemm_args_t& a, int sm_count) {
  // Tokens map to the small tile side: the smallest token tile that covers m wastes the fewest MMAs. Up to
  // m = 64 the kernels are bound by the weight stream, and what matters is keeping enough CTAs busy: the
  // 128x64 tile only wins once N >= 10240 gives it 80+ CTAs (config sweep, all eight Llama layers).
  if (a.m <= 16) return {128, 16, 1, 0};
  if (a.m <= 32) return {128, 32, 1, 0};
  if (a.m <= 64) return a.n >= 10240 ? TileChoice{128, 64, 1, 0} : TileChoice{128, 32, 1, 0};
  // Above, the work is waves of tiles: estimated time = waves x per-tile cost, so a bigger tile wins only
  // when it does not leave a mostly empty last wave (e.g. m = 512, n = 10240: 160 tiles of 128x256 are 2
  // waves, 320 of 128x128 are 3 waves of cheaper tiles). Ties go to the bigger tile (better reuse).
  TileChoice best = kLargeMTiles[0].tile;
  double best_cost = 0;
  for (const TileCost& t : kLargeMTiles) {
    const double waves = static_cast<double>(ceil_div(num_tiles(a, t.tile), sm_count));
    const double cost = waves * t.cost;
    if (best_cost == 0 || cost < best_cost - 1e-9) {
      best = t.tile;
      best_cost = cost;
    }
  }
  return best;
}

int find_decode(bool zeros) {
  for (int i = 0; i < kNumKernels; ++i) {
    const auto& info = kKernels[i]->info;
    if (info.schedule == W4A16_SCHEDULE_DECODE && static_cast<bool>(info.zeros) == zeros) return i;
  }
  return -1;
}

}  // namespace

int select_config(const w4a16_gemm_args_t& a, int sm_count) {
  const bool zeros = a.zeros != nullptr;
  // Small m: the memory-bound decode kernel, when this build has it.
  if (a.m <= kDecodeBelowM) {
    const int decode = find_decode(zeros);
    if (decode >= 0 && kKernels[decode]->info.tile_m >= a.m) return decode;
  }
  int best = find(preferred_tile(a, sm_count), zeros);
  if (best >= 0) return best;
  // A subset build (W4A16_KERNELS) may lack the preferred tile: take the smallest token tile that covers m,
  // else the largest token tile there is.
  int best_tile_m = 0;
  for (int i = 0; i < kNumKernels; ++i) {
    const auto& info = kKernels[i]->info;
    if (static_cast<bool>(info.zeros) != zeros) continue;
    if (info.schedule == W4A16_SCHEDULE_DECODE && info.tile_m < a.m) continue;
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
