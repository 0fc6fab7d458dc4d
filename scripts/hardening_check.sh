#!/usr/bin/env bash
# One device call for the hardening issue: build, compute-sanitizer (memcheck, racecheck, initcheck,
# synccheck) over scripts/hardening/sanitizer_sweep.py and racecheck over the decode kernel's own test
# (scripts/decode_dev, built from source with nvcc), then the hardening tests, then a summary table.
#   bash scripts/hardening_check.sh          (on the H100; logs and summary.txt under $OUT)
# Files under $OUT (at most 8 come back): build.log, <tool>.log x 4, pytest.log, summary.txt (+ repro.log
# with HARDENING_REPRO=1).
# The four sanitizer runs go in parallel (one process each, small shapes), and the tests run beside them,
# except the out-of-memory tests, which fill the GPU and so run alone once the sanitizers are done.
# Every test process runs with a native backtrace handler preloaded (scripts/hardening/native_backtrace.py):
# a crash prints its native frames, is recorded as CRASH <test id>, and the file's other tests still run.
set -uo pipefail
cd "$(dirname "$0")/.."
export SKBUILD_INSTALL_STRIP=false  # keep symbol tables, so that native backtraces have function names
source scripts/device_setup.sh
W4A16_PY=${W4A16_PY:-python3}
SAN_BUDGET=${SAN_BUDGET:-150}  # seconds of cases per tool; every config comes first, then more shapes
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
WORK=$(mktemp -d)
export W4A16_HARDENING_REPORT="$WORK/report.txt"
: >"$W4A16_HARDENING_REPORT"
SUMMARY="$OUT/summary.txt"
# The commit the tree was at, marked when tracked files differ from it (a device copy of a working tree under edit).
tree_revision() {
  local rev
  rev=$(git rev-parse --short HEAD 2>/dev/null) || { echo '(tarball)'; return; }
  [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && rev="$rev + uncommitted changes"
  echo "$rev"
}
{
  echo "== hardening_check $(date -u +%FT%TZ) commit $(tree_revision)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$SANITIZER" --version | tail -1
  # the device's copy of the tree may carry an older .git than the files: name the wheel under test too
  [ -n "${W4A16_WHEEL:-}" ] && echo "wheel $(basename "$W4A16_WHEEL") sha256 $(sha256sum "$W4A16_WHEEL" | cut -c1-16)"
} >"$SUMMARY" 2>&1
cat "$SUMMARY"
BT_SO=$("$W4A16_PY" scripts/hardening/native_backtrace.py build "$WORK/native_backtrace.so") || BT_SO=""
PRELOAD=${BT_SO:+LD_PRELOAD=$BT_SO}

run_tool() {  # tool scope
  local tool=$1 scope=$2 start=$(date +%s)
  timeout $((SAN_BUDGET + 120)) "$SANITIZER" --tool "$tool" --error-exitcode 99 --print-limit 20 \
    "$W4A16_PY" scripts/hardening/sanitizer_sweep.py --tool "$tool" --scope "$scope" --budget-s "$SAN_BUDGET" \
    >"$OUT/$tool.log" 2>&1
  echo "$? $(( $(date +%s) - start ))" >"$WORK/$tool.rc"
}
# memcheck's canaries: a deliberately short buffer per kind, through a CUTLASS kernel and the decode kernel. What
# they showed (H200, 2026-12-02): memcheck reports the decode kernel's plain 16-byte stores past a short out, and
# nothing that goes through TMA / cp.async.bulk (x and out of the CUTLASS kernels, x of the decode kernel), nor the
# short bias. So its zero over the sweep covers the plain global accesses only; decode/out must be reported, or
# the sweep's zero means nothing at all.
CANARY_CONFIGS="w4a16_sm90_n128_m16_k64_c1x1_coop_s w4a16_sm90_decode_m256_s"
run_canary() {  # kind config
  timeout 120 "$SANITIZER" --tool memcheck --print-limit 5 "$W4A16_PY" scripts/hardening/sanitizer_sweep.py \
    --plant "$1" --plant-config "$2" >"$WORK/canary_$2_$1.log" 2>&1
}
run_canaries() {
  local config kind
  for config in $CANARY_CONFIGS; do for kind in x out bias; do run_canary "$kind" "$config"; done; done
}
run_decode_racecheck() {  # the decode kernel built from source: decode_test check-small walks every split (1 and
  # cluster), ring depth and PDL mode on ragged shapes, which the sweep's few decode cases may not all meet
  local start=$(date +%s) rc=build-failed
  if command -v nvcc >/dev/null \
    && BUILD_DIR="$WORK/decode_dev" bash -c 'source scripts/decode_dev/build.sh' >"$WORK/racecheck_decode.log" 2>&1; then
    timeout 240 "$SANITIZER" --tool racecheck --error-exitcode 99 --print-limit 20 "$WORK/decode_dev/decode_test" \
      check-small >>"$WORK/racecheck_decode.log" 2>&1
    rc=$?
  fi
  echo "$rc $(( $(date +%s) - start ))" >"$WORK/racecheck_decode.rc"
}
echo "== compute-sanitizer (parallel, budget ${SAN_BUDGET}s each) and its canaries"
run_tool memcheck full &
run_tool synccheck full &
run_tool racecheck full &
run_tool initcheck full &
run_canaries &
run_decode_racecheck &

run_tests() {  # label, time limit (s), pytest args...: reruns without a test that crashed the process
  local label=$1 limit=$2 start=$(date +%s) crashes="" deselect=() rc line crashed attempt
  shift 2
  for attempt in 1 2 3 4; do
    echo "### $label: pytest $* ${deselect[*]}" >>"$OUT/pytest.log"
    env $PRELOAD timeout "$limit" "$W4A16_PY" -m pytest -v -p no:cacheprovider -rfEs "$@" "${deselect[@]}" 2>&1 \
      | tee -a "$OUT/pytest.log" >"$WORK/pytest_$label.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 139 ] && [ "$rc" -ne 134 ] && [ "$rc" -ne 135 ]; then break; fi
    crashed=$(grep -oE "^tests/[^ ]+::[^ ]+" "$WORK/pytest_$label.log" | tail -1)
    [ -z "$crashed" ] && break
    crashes="$crashes CRASH:$crashed"
    deselect+=(--deselect "$crashed")
  done
  line=$(grep -E "^(=+ )?[0-9]+ (passed|failed|skipped|error|deselected)|no tests ran" "$WORK/pytest_$label.log" | tail -1 | tr -d '=')
  printf "%-12s rc=%-3s %4ss %s%s\n" "$label" "$rc" "$(( $(date +%s) - start ))" "${line:-?}" "$crashes" | tee -a "$WORK/tests.txt"
}
echo "== tests (beside the sanitizers)"
: >"$OUT/pytest.log"
: >"$WORK/tests.txt"
run_tests bad_input 90 tests/test_bad_input.py
run_tests fuzz 150 tests/test_fuzz.py
run_tests concurrency 120 tests/test_concurrency.py
run_tests graphs 60 tests/test_graphs.py
run_tests pdl 60 tests/test_pdl.py
run_tests large 150 tests/test_large.py -k "not out_of_memory"
if [ -n "${HARDENING_REPRO:-}" ]; then  # the stand-alone crash reproducers, one process each
  for mode in ${HARDENING_REPRO}; do
    echo "### repro $mode" >>"$OUT/repro.log"
    env $PRELOAD timeout 120 "$W4A16_PY" scripts/hardening/crash_repro.py "$mode" >>"$OUT/repro.log" 2>&1
    echo "### repro $mode rc=$?" | tee -a "$OUT/repro.log"
  done
  "$W4A16_PY" scripts/hardening/native_backtrace.py symbolize "$OUT/repro.log" >>"$OUT/repro.log" 2>&1
fi
echo "== waiting for the sanitizers"
wait
echo "== out-of-memory tests (alone on the GPU)"
run_tests oom 90 tests/test_large.py -k "out_of_memory"
"$W4A16_PY" scripts/hardening/native_backtrace.py symbolize "$OUT/pytest.log" >"$WORK/native.txt" 2>&1

# ---- summary table ----
sanitizer_errors() {  # log rc: the error count compute-sanitizer printed last ("?" if none, TIMEOUT if cut off)
  local errors
  errors=$(grep -oE "ERROR SUMMARY: [0-9]+ error" "$1" | tail -1 | grep -oE "[0-9]+")
  # racecheck may print only "RACECHECK SUMMARY: N hazards displayed (E errors, W warnings)" ("1 error")
  [ -z "$errors" ] && errors=$(grep -oE "RACECHECK SUMMARY: .*\(([0-9]+) errors?" "$1" | tail -1 | grep -oE "[0-9]+ errors?" | grep -oE "[0-9]+")
  [ "$2" = "124" ] && errors="${errors:-TIMEOUT}"
  echo "${errors:-?}"
}
{
  echo
  printf "%-10s %-8s %-6s %-7s %s\n" tool errors rc seconds sweep
  for tool in memcheck racecheck initcheck synccheck; do
    read -r rc secs <"$WORK/$tool.rc" || { rc="?"; secs="?"; }
    errors=$(sanitizer_errors "$OUT/$tool.log" "$rc")
    sweep=$(grep -E "^SWEEP " "$OUT/$tool.log" | tail -1 | sed 's/^SWEEP //')
    printf "%-10s %-8s %-6s %-7s %s\n" "$tool" "$errors" "$rc" "$secs" "${sweep:-no summary line}"
  done
  grep -hE "RACECHECK SUMMARY|ERROR SUMMARY|LEAK SUMMARY" "$OUT"/{memcheck,racecheck,initcheck,synccheck}.log 2>/dev/null | sort | uniq -c
  read -r rc secs <"$WORK/racecheck_decode.rc" || { rc="?"; secs="?"; }
  printf "%-10s %-8s %-6s %-7s %s\n" "racecheck" "$(sanitizer_errors "$WORK/racecheck_decode.log" "$rc")" "$rc" "$secs" \
    "decode kernel from source: $(grep -hE '^check-small:' "$WORK/racecheck_decode.log" | tail -1)"
  grep -E "Race reported|Read access|Write access|error" "$WORK/racecheck_decode.log" | head -8
  echo
  echo "memcheck canaries (a deliberately short buffer; memcheck sees plain global accesses, not TMA / bulk copies):"
  for config in $CANARY_CONFIGS; do
    for kind in x out bias; do
      log="$WORK/canary_${config}_$kind.log"
      n=$(grep -oE "ERROR SUMMARY: [0-9]+ error" "$log" 2>/dev/null | tail -1 | grep -oE "[0-9]+")
      first=$(grep -m1 -E "Invalid|Program hit|out of bounds" "$log" 2>/dev/null | sed 's/=========//' | cut -c1-90)
      expect="not reported when measured, 2026-12-02"
      if [[ $config == *decode* && $kind == out ]]; then
        expect="must be reported: $([ "${n:-0}" -gt 0 ] && echo ok || echo 'NOT REPORTED: the sweep above proves nothing')"
      fi
      echo "  ${config#w4a16_sm90_} short $kind: ${n:-?} errors ($expect); $(grep -m1 '^PLANT' "$log" | cut -c1-60) ${first}"
    done
  done
  echo
  echo "tests:"
  cat "$WORK/tests.txt"
  echo
  echo "details:"
  cat "$W4A16_HARDENING_REPORT"
  fuzz_cases=$(sed -nE 's/^fuzz_batch.* cases=([0-9]+).*/\1/p' "$W4A16_HARDENING_REPORT" | awk '{s+=$1} END {print s+0}')
  fuzz_fail=$(sed -nE 's/^fuzz_batch.* failures=([0-9]+).*/\1/p' "$W4A16_HARDENING_REPORT" | awk '{s+=$1} END {print s+0}')
  echo "fuzz total: cases=${fuzz_cases:-0} failures=${fuzz_fail:-?}"
  grep -E "^FUZZ FAIL" "$OUT/pytest.log" | head -20
  if grep -q "native backtrace" "$WORK/native.txt"; then
    echo
    echo "native backtraces of crashes (symbolized):"
    head -80 "$WORK/native.txt"
  fi
} >>"$SUMMARY"
echo "== summary"
cat "$SUMMARY"
rm -rf "$WORK"
