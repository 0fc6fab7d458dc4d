#!/usr/bin/env bash
# Where the decode kernel's warps wait (ncu stall reasons per issued instruction), cold weights; reuses the
# binary of a previous run.sh/profile.sh unless it is missing (SKIP_BUILD=1 is set here).
#   bash scripts/decode_dev/stalls.sh "N K M [tile_nb split]" ...
set -uo pipefail
cd "$(dirname "$0")/../.."
SKIP_BUILD=${SKIP_BUILD-1} source scripts/decode_dev/build.sh
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=("4096 4096 1" "57344 8192 1")
for c in "${cases[@]}"; do
  echo "########## decode_test profile $c"
  timeout 120 ncu -s 2 -c 1 -k regex:decode_kernel \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__issue_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed' \
    "$BUILD/decode_test" profile $c 2>&1 | grep -vE "^==PROF==|^\s*$" | awk '$NF+0 > 0.05 || /#|decode_kernel|time_duration|issue_active|dram/'
done
