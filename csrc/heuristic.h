#pragma once

#include "w4a16/w4a16.h"

namespace w4a16 {
// Index of the config the default heuristic picks for this problem, or -1 when the build has none that
// serves the weights' mode (scale-only / zero-point).
int select_config(const w4a16_gemm_args_t& args, int sm_count);

// The order in which the persistent CUTLASS kernels walk their output tiles: CUTLASS's raster order (which side
// of the tile grid is walked first) and swizzle (how many tiles of the other side a stripe spans), which decide
// how often the weights and x are re-read from DRAM instead of L2 once they no longer fit in it.
enum class TileRaster { kAuto, kAlongWeights, kAlongTokens };
struct TileOrder {
  TileRaster raster;
  int max_swizzle;  // 1, 2, 4 or 8
};
// Default: CUTLASS's raster heuristic, and stripes of 8 tiles once the output tiles outnumber the SMs (a grid of
// one wave reads every operand once whatever the order). W4A16_TILE_RASTER (auto | n | m) and W4A16_TILE_SWIZZLE
// (1 | 2 | 4 | 8) in the environment override it for the whole process (for A/B timing); read once.
TileOrder select_tile_order(long long output_tiles, int sm_count);

// How a stream-K kernel divides its work. kHeuristic is CUTLASS's own choice, which runs a grid of half a wave
// to one data-parallel; kStreamK spreads the K iterations of the last one or two waves' tiles evenly over every
// SM. Default: kStreamK for grids of half to 3/4 of a wave on K >= 8192, where that measured faster, CUTLASS's
// choice elsewhere. W4A16_STREAMK_DECOMPOSITION (heuristic | streamk) overrides it for the whole process (for
// A/B timing); read once.
enum class StreamKDecomposition { kHeuristic, kStreamK };
StreamKDecomposition select_streamk_decomposition(const w4a16_gemm_args_t& args, int tile_n, int tile_m,
                                                  int cluster_n, int sm_count);
}  // namespace w4a16
