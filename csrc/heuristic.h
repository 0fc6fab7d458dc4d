#pragma once

#include "w4a16/w4a16.h"

namespace w4a16 {
// Index of the config the default heuristic picks for this problem, or -1 when the build has none that
// serves the weights' mode (scale-only / zero-point).
int select_config(const w4a16_gemm_args_t& args, int sm_count);
}  // namespace w4a16
