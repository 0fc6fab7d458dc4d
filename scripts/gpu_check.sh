#!/usr/bin/env bash
# One device call: build, the GPU test suite, and the CLI runs the core issue asks for.
#   bash scripts/gpu_check.sh            (on the H100; logs and a summary under $OUT)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_setup.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv | tee "$OUT/gpu.txt"

echo "== GPU tests"
"$W4A16_PY" -m pytest tests -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -25
pytest_rc=${PIPESTATUS[0]}

echo "== CLI"
cli_rc=0
run_cli() {
  echo "\$ w4a16_only_test $*" | tee -a "$OUT/cli.log"
  w4a16_only_test "$@" 2>&1 | tee -a "$OUT/cli.log"
  local rc=${PIPESTATUS[0]}
  echo "exit $rc" | tee -a "$OUT/cli.log"
  return "$rc"
}
run_cli || cli_rc=1
run_cli 1 57344 8192 || cli_rc=1
run_cli 4096 8192 8192 || cli_rc=1
run_cli 3 72 192 --group-size 64 || cli_rc=1
run_cli 3 72 192; [ $? -eq 2 ] || cli_rc=1
run_cli 16 8192 8192 --zeros --group-size 64 || cli_rc=1
run_cli 512 1024 1024 --json --config 0 || cli_rc=1

echo "== summary"
grep -E "passed|failed|error" "$OUT/pytest.log" | tail -1
grep -E "^Check|^Config|^Launch|^Time|exit" "$OUT/cli.log"
ls -la "$(dirname "$("$W4A16_PY" -c 'import w4a16_gemm; print(w4a16_gemm.__file__)')")" | grep -E "\.so|bin"
[ "$pytest_rc" -eq 0 ] && [ "$cli_rc" -eq 0 ]
