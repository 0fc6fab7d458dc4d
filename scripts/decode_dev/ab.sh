#!/usr/bin/env bash
# A/B of decode-kernel variants: builds each variant of a list, then (on the GPU) runs `decode_test check` on the
# ones named in CHECKS and `decode_test bench` on every one, interleaved, and prints one table (us per call, PDL on)
# with the M 1-16 geomean of time / floor per variant.
#   bash scripts/decode_dev/ab.sh build VARIANTS_FILE     (CPU or GPU machine; two builds at a time, JOBS=2)
#   bash scripts/decode_dev/ab.sh run VARIANTS_FILE       (GPU; logs under $OUT, default build/decode_dev/ab)
# VARIANTS_FILE lines: "source.cu|name|extra nvcc flags", e.g.
#   csrc/decode_gemm.cu|lib|
#   /tmp/decode_old.cu|old|
#   /tmp/decode_exp.cu|cap96|-DEXP_CAP=96
# Each name is built as build/decode_dev/dt_<name>. ROUNDS (default 2) repeats the bench pass to show the noise.
# AB_MODE=mid runs `decode_test mid` (tile x split sweep of the warpgroup-MMA kernels; MID_MS picks the m list)
# instead of `bench`, and prints each variant's BEST/auto lines.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
mode=${1:?build or run}
list=${2:?variants file}
names=$(grep -v '^#' "$list" | cut -d'|' -f2)
if [[ $mode == build ]]; then
  build_one() {
    IFS='|' read -r src name flags <<< "$1"
    DECODE_SRC=$src DECODE_BIN=dt_$name NVCC_EXTRA="$flags" bash -c 'source scripts/decode_dev/build.sh' >/dev/null \
      && echo "built dt_$name" || echo "FAILED dt_$name"
  }
  export -f build_one
  grep -v '^#' "$list" | xargs -P "${JOBS:-2}" -I{} bash -c 'build_one "{}"'
  exit 0
fi
B=build/decode_dev
OUT=${OUT:-$B/ab}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
for v in ${CHECKS:-}; do
  timeout 150 "$B/dt_$v" check > "$OUT/check_$v.txt" 2>&1
  echo "check $v: exit $?, $(tail -1 "$OUT/check_$v.txt")"
done
run=${AB_MODE:-bench}
for round in $(seq "${ROUNDS:-2}"); do
  for v in $names; do
    timeout "${AB_TIMEOUT:-150}" "$B/dt_$v" "$run" > "$OUT/${run}_${v}_r$round.txt" 2>&1 || echo "$run $v round $round failed"
  done
done
if [[ $run == bench ]]; then
  python3 scripts/decode_dev/ab_summary.py "$OUT"/bench_*_r*.txt | tee "$OUT/summary.txt"
else
  grep -H "BEST" "$OUT"/"${run}"_*_r*.txt | tee "$OUT/summary.txt"
fi
