#!/usr/bin/env bash
# Every experiment of this folder in one device call.
#   bash scripts/decode_dev/experiments/run.sh build   (CPU machine: patched copies -> build/decode_dev/dt_*; carry
#                                                        build/decode_dev to the device)
#   bash scripts/decode_dev/experiments/run.sh run     (GPU: logs under $OUT, default build/decode_dev/exp)
# run: `check` of the pipelined variant, `mid` of the library and the pipeline at M = 16-128, `bench` (M 1-16) of the
# library, the pipeline and the x-before-wait measurement, `clusters` (how many clusters of each size fit at once)
# and the narrow sweep with clusters of 3, 5, 6, 7 and 8.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
B=build/decode_dev
E=scripts/decode_dev/experiments
mkdir -p "$B"
case ${1:?build or run} in
  build)
    cp csrc/decode_gemm.cu /tmp/exp_pipe.cu && patch -s /tmp/exp_pipe.cu "$E/wg_chunk_pipeline.patch" || exit 1
    cp csrc/decode_gemm.cu /tmp/exp_xwait.cu && patch -s /tmp/exp_xwait.cu "$E/x_before_wait.patch" || exit 1
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_pipe.cu|pipe|-DEXP_PIPE\n' > "$B/v_mid.txt"
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_pipe.cu|pipe|-DEXP_PIPE\n/tmp/exp_xwait.cu|xwait|-DEXP_X_BEFORE_WAIT\n' \
      > "$B/v_bench.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_bench.txt"
    ;;
  run)
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    CHECKS="pipe" AB_MODE=mid AB_TIMEOUT=240 MID_MS=16,32,64,128 ROUNDS=1 OUT="$OUT/mid" \
      bash scripts/decode_dev/ab.sh run "$B/v_mid.txt"
    ROUNDS=2 OUT="$OUT/bench" bash scripts/decode_dev/ab.sh run "$B/v_bench.txt"
    "$B/dt_lib" clusters > "$OUT/clusters.txt" 2>&1; cat "$OUT/clusters.txt"
    NARROW_SPLITS=3,5,6,7,8 NARROW_STAGES=0 NARROW_MS=1,16 timeout 240 "$B/dt_lib" narrow > "$OUT/narrow.txt" 2>&1
    echo "narrow: exit $?"; grep BEST "$OUT/narrow.txt"
    ;;
  *) echo "usage: $0 build|run"; exit 2 ;;
esac
