#!/usr/bin/env bash
# Every experiment of this folder in one device call.
#   bash scripts/decode_dev/experiments/run.sh build   (CPU machine: patched copies -> build/decode_dev/dt_*; carry
#                                                        build/decode_dev to the device)
#   bash scripts/decode_dev/experiments/run.sh run     (GPU: logs under $OUT, default build/decode_dev/exp)
# run: `check` and `bench` (M 1-16, two rounds) of the push epilogue against the library, `check` of the
# 64-token-tile variant, `mid` (tile x split of the warpgroup-MMA kernels) at M = 128 for the
# library (128-token tiles) and at M = 128 and 256 for the variant (64-token tiles, two or four along z), and ncu of
# the library's warpgroup-MMA kernel on 4096x4096 at M = 32 and 64 (L2 and shared-memory traffic vs tensor pipe).
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
B=build/decode_dev
E=scripts/decode_dev/experiments
mkdir -p "$B"
case ${1:?build or run} in
  build)
    cp csrc/decode_gemm.cu /tmp/exp_tok64.cu && patch -s /tmp/exp_tok64.cu "$E/token_tile_64.patch" || exit 1
    cp csrc/decode_gemm.cu /tmp/exp_push.cu && patch -s /tmp/exp_push.cu "$E/push_epilogue.patch" || exit 1
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_tok64.cu|tok64|-DEXP_TOK64\n' > "$B/v_mid.txt"
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_push.cu|push|-DEXP_PUSH\n' > "$B/v_push.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_mid.txt"
    grep push "$B/v_push.txt" > "$B/v_push_only.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_push_only.txt"
    ;;
  run)
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    CHECKS=push ROUNDS=2 OUT="$OUT/push" bash scripts/decode_dev/ab.sh run "$B/v_push.txt"
    timeout 150 "$B/dt_tok64" check > "$OUT/check_tok64.txt" 2>&1
    echo "check tok64: exit $?, $(tail -1 "$OUT/check_tok64.txt")"
    MID_MS=128 MID_SPLITS=1,2,3,4,6 timeout 200 "$B/dt_lib" mid > "$OUT/mid_lib.txt" 2>&1
    echo "mid lib: exit $?"; grep BEST "$OUT/mid_lib.txt"
    MID_MS=128,256 MID_SPLITS=1,2,3,4,6 timeout 240 "$B/dt_tok64" mid > "$OUT/mid_tok64.txt" 2>&1
    echo "mid tok64: exit $?"; grep BEST "$OUT/mid_tok64.txt"
    for m in 32 64; do  # (decode_test profile allocates x for m <= 64)
      timeout 90 ncu -s 2 -c 1 -k regex:decode_kernel --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section LaunchStats --section Occupancy --section ComputeWorkloadAnalysis "$B/dt_lib" profile 4096 4096 $m \
        > "$OUT/ncu_4096_m$m.txt" 2>&1
      echo "ncu m=$m: exit $?"
    done
    ;;
  *) echo "usage: $0 build|run"; exit 2 ;;
esac
