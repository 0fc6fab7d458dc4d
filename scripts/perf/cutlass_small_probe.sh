#!/usr/bin/env bash
# Where the CUTLASS kernels' time goes on a small layer at M 32-256 (4096x4096: ~16-19 us per call whatever the
# tile, against 10 us for the decode kernel at M = 16): ncu on one launch per config of the installed package's
# w4a16_only_test (duration, SM activity, warp stalls), next to the per-call time of the benchmark protocol.
#   bash scripts/perf/cutlass_small_probe.sh [WHEEL]     (GPU machine; $OUT/ncu_small.txt)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build/cutlass_small_probe}
mkdir -p "$OUT"
if [ -n "${1:-}" ]; then python3 -m pip install -q --no-index --no-deps --force-reinstall "$1" 2>&1 | tail -1; fi
BIN=$(python3 -c 'from w4a16_gemm import _cli; print(_cli.executable_path())')
# shellcheck disable=SC2086  # $args is a word list on purpose
for args in "32 4096 4096" "64 4096 4096" "128 4096 4096" "64 4096 4096 --config w4a16_sm90_n64_m128_k64_c1x1_pingpong_s"; do
  echo "##### w4a16_only_test $args"
  "$BIN" $args --iters 20 | grep -E "Config|Time"
  timeout 120 ncu -c 1 -s 2 -k regex:device_kernel --section SpeedOfLight --section LaunchStats \
    --section WarpStateStats --section SchedulerStats "$BIN" $args --iters 3 --warmup 1 --no-check 2>&1 \
    | grep -E "Duration|Elapsed Cycles|SM Active Cycles|SM Frequency|Grid Size|Block Size|Registers Per|Issued Warp|Active Warps Per|Warp Cycles Per Issued|Stall|stall|cycles being stalled" | head -24
done 2>&1 | tee "$OUT/ncu_small.txt"
