// Default config choice from (m, n, k). The rules are data, checked in order, first match wins; each
// names a tile by its (tile_n, tile_m, cluster_n, schedule), and the weights' mode picks the _s or _sz
// instance. Measurements behind the rules are in benchmarks/NOTES.md; tests/test_heuristic.py pins every
// boundary.
#include "heuristic.h"

#include <cstdlib>
#include <cstring>

#include "kernel_registry.h"

namespace w4a16 {
namespace {

struct TileChoice {
  int tile_n, tile_m, cluster_n, schedule;
  int stream_k = 0;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// CTA tiles of a launch: CUTLASS rounds the tiles along the weights up to whole clusters, and the padding CTAs
// hold SMs like the others, so the wave model and the stream-K rule both count them.
int64_t cluster_tiles(int64_t n, int64_t m, int tile_n, int tile_m, int cluster_n) {
  return ceil_div(ceil_div(n, tile_n), cluster_n) * cluster_n * ceil_div(m, tile_m);
}
int64_t num_tiles(const w4a16_gemm_args_t& a, const TileChoice& t) {
  return cluster_tiles(a.n, a.m, t.tile_n, t.tile_m, t.cluster_n);
}

// Stream-K below one wave. CUTLASS's heuristic runs a grid of half a wave to one data-parallel (the stream-K
// kernels then cost what their data-parallel twins do); spreading those tiles' K over every SM wins on deep K and
// loses on K = 4096, where a tile's fix-up (its fp32 partials written and read back) weighs twice as much against
// its K run (H200, scripts/perf/streamk_decomposition_ab.sh, benchmarks/NOTES.md 2026-12-02: 10240 x 8192, 80
// tiles = 0.61 waves, M = 128 stream-K 128x128 48.4 -> 40.4 us, M = 256 stream-K 128x256 80.0 -> 66.8; 6144 x
// 4096, 96 tiles, M = 256 26.3 -> 28.6, M = 512 42.9 -> 45.6; at 128 tiles, 0.97 waves, 8-16% slower on K =
// 8192 too). Break-even fitted at ~0.83 waves; this stops at 0.75.
bool streamk_below_one_wave(int64_t tiles, int64_t k, int sm_count) {
  return k >= 8192 && 2 * tiles >= sm_count && 4 * tiles <= 3ll * sm_count;
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
// half the work (0.60 per tile) and 64x128 ping-pong 1.80x for a quarter (0.45 per tile). The stream-K 128x128
// tile costs ~1.2x its data-parallel twin per tile (fix-up traffic; fitted to the sweep of 2026-11-25 at
// M = 512-1024) but spreads the tiles evenly over the SMs: fractional waves instead of whole ones. Below one wave
// it only splits K, which pays for its fix-up only on deep K: with k <= 8192 it lost to a data-parallel tile at
// every point of the H200 sweeps (8192 x 8192 M = 256, 128 tiles: 51.9 vs 50.0 us; 6144 x 4096 M = 256: 26.3 vs
// 24.1) but where it runs half to 3/4 of a wave through stream-K on K = 8192 (streamk_below_one_wave: 10240 x 8192
// M = 128, 40.4 vs 45.0), with k = 14336 it won (4096 x 14336 M = 256: 52.4 vs 76.1). From one wave on it wins
// where whole waves waste most (10240 x 8192 M = 256, 1.21 waves: 69.9 vs 77.9 us for 128x256).
// The stream-K 128x256 tile is modelled as CUTLASS runs it beyond one wave: whole waves data-parallel except the
// last full one, which goes with the remainder through stream-K at 1.25x per tile (fitted to the H200 sweep of
// 2026-12-02, M = 512 and 1024 on the 8 grid layers, where this picks the fastest compiled config at all 16
// points: 10240 x 8192 M = 512 118 us vs 127 for stream-K 128x128; M = 1024 221 vs 247 for 128x256). It competes
// from one to four waves, and from half to 3/4 of a wave on K >= 8192, at waves x 1.25 (streamk_below_one_wave:
// 10240 x 8192 M = 256, 66.8 us vs 69.7 for stream-K 128x128); elsewhere below one wave splitting K lost (6144 x
// 4096 M = 512: 42.8 vs 41.1 us for 128x256), and above four waves it was not measured. Both stream-K tiles
// compete from M = 128 on (the sweep of 2026-12-02 at M = 128 and 256,
// benchmarks/results/config-sweep-m128-256-h200.json: 57344 x 8192 M = 256, 3.39 waves of 128x256: 311.5 us
// against 337.6 data-parallel).
enum class WaveModel { kWhole, kFractional, kStreamKTail };
struct TileCost {
  TileChoice tile;
  double cost;
  WaveModel waves;
};
constexpr TileCost kLargeMTiles[] = {
    {{128, 256, 2, 0}, 1.00, WaveModel::kWhole},
    {{128, 128, 1, 0}, 0.60, WaveModel::kWhole},
    {{64, 128, 1, 1}, 0.45, WaveModel::kWhole},
    {{128, 128, 1, 0, 1}, 0.72, WaveModel::kFractional},
    {{128, 256, 2, 0, 1}, 1.25, WaveModel::kStreamKTail},
};

// Where the decode kernels (csrc/decode_gemm.cu) beat every CUTLASS tile, from the grid of record and
// `decode_test mid` (H200, 2026-12-01, benchmarks/NOTES.md):
//  - m <= 16: everywhere (mma.sync kernels; at m 9-16 on layers of < 2^26 weights the warpgroup-MMA kernel, which
//    decode_select_config picks);
//  - m 17-64 (warpgroup-MMA kernels): on every layer with k <= 16384, 1.03-1.7x faster than the CUTLASS choice
//    (4096x4096 m = 32: 9.7 vs 16.5 us; 57344x8192 m = 64: 137 vs 147); 8192x28672 stays on stream-K at m 33-64
//    (69 vs 67) and takes the decode kernel at m 17-32 since its 16-block tiles run two per SM (56.7 vs 65.9 us,
//    H200 2026-12-02); with the global split-K fix-up (decode_select_config) 8192x28672 takes the decode kernel
//    at m 33-64 too (71.0 vs 77.4 us, H200 2026-12-03), and so does any k on layers of <= 8192 features, where
//    that grid exists;
//  - m 65-128: layers of <= 2^26 weights with k <= 8192 (4096x4096 m = 128: 16.0 vs 18.7 us, 8192x8192 33.2 vs
//    34.6, 6144x4096 even); larger layers lose up to 1.4x to 128x128 tiles.
bool decode_preferred(const w4a16_gemm_args_t& a) {
  if (a.m <= 32) return true;
  if (a.m <= 64) return a.k <= 16384 || a.n <= 8192;
  if (a.m <= 128) return a.k <= 8192 && a.n * a.k <= (int64_t{1} << 26);
  return false;
}

TileChoice preferred_tile(const w4a16_gemm_args_t& a, int sm_count) {
  // Tokens map to the small tile side: the smallest token tile that covers m wastes the fewest MMAs. (The rules
  // below m = 128 matter where the decode kernels do not serve: decode_preferred, or builds without them.)
  if (a.m <= 16) return {128, 16, 1, 0};
  // Up to m = 64 the kernels are bound by the weight stream, and what matters is keeping every SM streaming.
  // A data-parallel grid of n / 128 CTAs walks K serially in each; stream-K splits K so that all SMs work
  // (4096 x 14336 at m = 32: 60 -> 26 us). Data-parallel only wins where its tiles make 1-2 full waves (28672
  // x 4096: 224 tiles), by 3-6% (config sweep 2026-11-25, benchmarks/NOTES.md).
  if (a.m <= 64) {
    const int tile_m = a.m <= 32 ? 32 : 64;
    const int64_t tiles = ceil_div(a.n, 128);
    const bool data_parallel = tiles >= sm_count && tiles <= 2ll * sm_count;
    return {128, tile_m, 1, 0, data_parallel ? 0 : 1};
  }
  // Deep K on narrow layers: 128x128 tiles number <= half the SMs, each with >= 128 k-steps, so splitting K
  // beats any tile shape (4096 x 14336, m = 128: 59.5 -> 36.5 us; 8192 x 28672: 117 -> 95 us). Measured up to
  // m = 256.
  if (a.m <= 256 && a.k >= 8192 && num_tiles(a, {128, 128, 1, 0}) * 2 <= sm_count) return {128, 128, 1, 0, 1};
  // Above, the work is waves of tiles: estimated time = waves x per-tile cost, so a bigger tile wins only
  // when it does not leave a mostly empty last wave (e.g. m = 512, n = 10240: 160 tiles of 128x256 are 2
  // waves, 320 of 128x128 are 3 waves of cheaper tiles, or 2.4 waves of stream-K ones). Ties go to the bigger
  // tile (better reuse).
  TileChoice best = kLargeMTiles[0].tile;
  double best_cost = 0;
  for (const TileCost& t : kLargeMTiles) {
    const int64_t tiles = num_tiles(a, t.tile);
    const double waves = static_cast<double>(tiles) / sm_count;
    double cost = 0;
    switch (t.waves) {
      case WaveModel::kWhole: cost = static_cast<double>(ceil_div(tiles, sm_count)) * t.cost; break;
      case WaveModel::kFractional:
        if (waves < 1.0 && a.k <= 8192 && !streamk_below_one_wave(tiles, a.k, sm_count)) continue;
        cost = waves * t.cost;
        break;
      case WaveModel::kStreamKTail: {
        if (waves < 1.0 && streamk_below_one_wave(tiles, a.k, sm_count)) {
          cost = waves * t.cost;
          break;
        }
        if (waves < 1.0 || waves >= 4.0) continue;
        const double full = static_cast<double>(static_cast<int64_t>(waves));
        cost = (full - 1.0) + (waves - full + 1.0) * t.cost;
        break;
      }
    }
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
  // Small m: the decode kernels, when this build has them.
  if (decode_preferred(a)) {
    const int decode = find_decode(zeros);
    if (decode >= 0 && kKernels[decode]->info.tile_m >= a.m) return decode;
  }
  const TileChoice preferred = preferred_tile(a, sm_count);
  int best = find(preferred, zeros);
  if (best < 0 && preferred.stream_k) {  // a build without the stream-K variant: its data-parallel twin
    TileChoice twin = preferred;
    twin.stream_k = 0;
    best = find(twin, zeros);
  }
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

TileOrder select_tile_order(long long output_tiles, int sm_count) {
  static const TileOrder forced = [] {
    TileOrder o{TileRaster::kAuto, 0};
    if (const char* r = std::getenv("W4A16_TILE_RASTER")) {
      if (std::strcmp(r, "n") == 0) o.raster = TileRaster::kAlongWeights;
      if (std::strcmp(r, "m") == 0) o.raster = TileRaster::kAlongTokens;
    }
    if (const char* s = std::getenv("W4A16_TILE_SWIZZLE")) {
      const int v = std::atoi(s);
      if (v == 1 || v == 2 || v == 4 || v == 8) o.max_swizzle = v;
    }
    return o;
  }();
  // Stripes of 8 tiles keep the operands of a wave in L2 once x or the weights outgrow it: at M = 8192 the
  // 128x256 tiles ran 4-7% faster (4096x4096 417 -> 396 us, 4096x14336 1428 -> 1330, 57344x8192 11803 -> 11034;
  // H200, scripts/perf/tile_order_ab.sh, benchmarks/NOTES.md) and M = 4096 1-7%; the raster order made no
  // difference beyond the noise once the stripes were there. One wave is unchanged (M = 512: within 0.3%).
  TileOrder order{TileRaster::kAuto, output_tiles > sm_count ? 8 : 1};
  if (forced.raster != TileRaster::kAuto) order.raster = forced.raster;
  if (forced.max_swizzle) order.max_swizzle = forced.max_swizzle;
  return order;
}

StreamKDecomposition select_streamk_decomposition(const w4a16_gemm_args_t& a, int tile_n, int tile_m,
                                                  int cluster_n, int sm_count) {
  static const int forced = [] {
    const char* d = std::getenv("W4A16_STREAMK_DECOMPOSITION");
    if (d && std::strcmp(d, "streamk") == 0) return 1;
    if (d && std::strcmp(d, "heuristic") == 0) return 0;
    return -1;
  }();
  if (forced >= 0) return forced ? StreamKDecomposition::kStreamK : StreamKDecomposition::kHeuristic;
  const int64_t tiles = cluster_tiles(a.n, a.m, tile_n, tile_m, cluster_n);
  return streamk_below_one_wave(tiles, a.k, sm_count) ? StreamKDecomposition::kStreamK
                                                      : StreamKDecomposition::kHeuristic;
}

}  // namespace w4a16
