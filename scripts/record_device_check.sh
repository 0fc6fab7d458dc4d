#!/usr/bin/env bash
# The device call of record: every check a wheel built on the CPU machine gets before its grid is committed, in
# one call (~7-9 minutes on an H200):
#   1. decode_test capture / thread / check (build/decode_dev/dt_lib: `DECODE_BIN=dt_lib bash -c 'source
#      scripts/decode_dev/build.sh'` on the CPU machine from the same sources as the wheel);
#   2. scripts/wheel_device_check.sh .devdist: install checks, the whole test suite against the wheel, the whole
#      grid (fbgemm's column from .whlfb when carried; gemlite's and tqdm's wheels there add gemlite's column,
#      which the 300 s bench budget does not cover: its own call, benchmarks/NOTES.md session 20);
#   3. scripts/hardening_check.sh on the same wheel: compute-sanitizer over every config, the decode kernel's
#      racecheck from source (needs the nvidia-cutlass wheel in .whl), fuzz, > 2^31-element buffers, OOM paths.
# Carry .devdist, .whlfb, .whl and build/decode_dev holding dt_lib alone (the carry limit is 64 MiB).
# Logs: $OUT/d (decode_test), $OUT/w (wheel check, bench.{json,csv,png}), $OUT/h (hardening), all in record.tgz.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT/d"
for mode in capture thread check; do
  timeout 150 build/decode_dev/dt_lib "$mode" >"$OUT/d/decode_$mode.txt" 2>&1
  echo "decode_test $mode: exit $? | $(tail -1 "$OUT/d/decode_$mode.txt")"
done
STEPS="tests bench" BENCH_WHEELS=.whlfb BENCH_TIMEOUT=${BENCH_TIMEOUT:-300} OUT="$OUT/w" \
  bash scripts/wheel_device_check.sh .devdist
W=$(compgen -G ".devdist/w4a16_gemm-*-cp312-*.whl" | head -1)
W4A16_WHEEL=$PWD/$W SAN_BUDGET=${SAN_BUDGET:-40} HARDENING_REPRO="first-use launch-only" OUT="$OUT/h" \
  timeout "${HARDENING_TIMEOUT:-170}" bash scripts/hardening_check.sh | tail -40
tar czf "$OUT/record.tgz" -C "$OUT" d w h
