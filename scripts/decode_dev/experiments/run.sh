#!/usr/bin/env bash
# Every experiment of this folder in one device call.
#   bash scripts/decode_dev/experiments/run.sh build   (CPU machine: patched copies -> build/decode_dev/dt_*; carry
#                                                        build/decode_dev to the device)
#   bash scripts/decode_dev/experiments/run.sh run     (GPU: logs under $OUT, default build/decode_dev/exp)
# run: `bench` (M 1-16) of the library and the x-before-wait measurement, `clusters` (how many clusters of each size
# fit at once, and the library's fit) and the narrow sweep over every split.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
B=build/decode_dev
E=scripts/decode_dev/experiments
mkdir -p "$B"
case ${1:?build or run} in
  build)
    cp csrc/decode_gemm.cu /tmp/exp_xwait.cu && patch -s /tmp/exp_xwait.cu "$E/x_before_wait.patch" || exit 1
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_xwait.cu|xwait|-DEXP_X_BEFORE_WAIT\n' > "$B/v_bench.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_bench.txt"
    ;;
  run)
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    ROUNDS=2 OUT="$OUT/bench" bash scripts/decode_dev/ab.sh run "$B/v_bench.txt"
    "$B/dt_lib" clusters > "$OUT/clusters.txt" 2>&1; cat "$OUT/clusters.txt"
    NARROW_SPLITS=1,2,3,4,5,6,7,8 NARROW_STAGES=0 NARROW_MS=1,16 timeout 240 "$B/dt_lib" narrow > "$OUT/narrow.txt" 2>&1
    echo "narrow: exit $?"; grep BEST "$OUT/narrow.txt"
    ;;
  *) echo "usage: $0 build|run"; exit 2 ;;
esac
