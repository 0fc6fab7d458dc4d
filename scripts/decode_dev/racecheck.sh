#!/usr/bin/env bash
# racecheck on the decode kernel, two ways, to tell a kernel hazard from a tool artefact:
#   1. decode_test check-small (every split incl. 1, with and without PDL) built from csrc/decode_gemm.cu and from
#      each other source given as an argument (e.g. an older revision: git show REV:csrc/decode_gemm.cu > f.cu);
#   2. if w4a16_gemm is installed, scripts/hardening/sanitizer_sweep.py (config=None cases, M = 1..16) with PDL on
#      and off (W4A16_PDL=0).
#   bash scripts/decode_dev/racecheck.sh [variant.cu ...]        (logs under $OUT or build/decode_dev)
#   SWEEP=0 skips part 2; RACE_ARGS adds racecheck options to part 1 (e.g. "--racecheck-report hazard").
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_DIR:-build/decode_dev}
LOGS=${OUT:-$BUILD}
mkdir -p "$BUILD" "$LOGS"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
sources=(csrc/decode_gemm.cu "$@")
for i in "${!sources[@]}"; do
  DECODE_SRC=${sources[$i]} DECODE_BIN=decode_test_$i bash -c 'source scripts/decode_dev/build.sh' &
done
if [ "${SWEEP:-1}" != 0 ] && python3 -c "import w4a16_gemm" 2>/dev/null; then
  for pdl in 1 0; do
    W4A16_PDL=$pdl timeout 300 "$SAN" --tool racecheck --print-limit 10 python3 scripts/hardening/sanitizer_sweep.py \
      --tool "racecheck-pdl$pdl" >"$LOGS/race_sweep_pdl$pdl.log" 2>&1 &
  done
fi
wait
for i in "${!sources[@]}"; do
  [ -x "$BUILD/decode_test_$i" ] || { echo "build of ${sources[$i]} failed"; continue; }
  # shellcheck disable=SC2086  # RACE_ARGS: extra racecheck options, e.g. "--racecheck-report hazard"
  timeout "${RACE_TIMEOUT:-200}" "$SAN" --tool racecheck --print-limit 10 ${RACE_ARGS:-} "$BUILD/decode_test_$i" check-small \
    >"$LOGS/race_decode_$i.log" 2>&1 &
done
wait
for i in "${!sources[@]}"; do
  [ -f "$LOGS/race_decode_$i.log" ] || continue
  echo "decode_test check-small from ${sources[$i]}: $(grep -hE 'RACECHECK SUMMARY|ERROR SUMMARY|check-small:' "$LOGS/race_decode_$i.log" | tr '\n' ' ')"
  grep -E "Race reported|Read access|Write access" "$LOGS/race_decode_$i.log" | head -6
done
for pdl in 1 0; do
  f="$LOGS/race_sweep_pdl$pdl.log"
  [ -f "$f" ] || continue
  echo "sanitizer_sweep, W4A16_PDL=$pdl: $(grep -hE 'RACECHECK SUMMARY|ERROR SUMMARY|^SWEEP' "$f" | tr '\n' ' ')"
  grep -E "Race reported|Read access|Write access" "$f" | head -6
done
