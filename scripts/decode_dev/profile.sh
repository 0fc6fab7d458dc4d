#!/usr/bin/env bash
# ncu of the decode kernel on cold weights (one launch after two warm ones); rebuilds unless SKIP_BUILD=1. Usage:
#   bash scripts/decode_dev/profile.sh "N K M [tile_nb split]" ...     (default: the cases below)
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/decode_dev/build.sh
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=("4096 4096 1" "4096 4096 16" "4096 4096 1 16 8" "57344 8192 1")
for c in "${cases[@]}"; do
  echo "########## decode_test profile $c"
  timeout 120 ncu -s 2 -c 1 -k regex:decode_kernel --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section LaunchStats --section Occupancy --section SchedulerStats --section WarpStateStats \
    --section ComputeWorkloadAnalysis "$BUILD/decode_test" profile $c 2>&1 | grep -vE "^==PROF==|^\s*$|^    -----"
done
