#!/usr/bin/env bash
# Build and run the decode-kernel test/benchmark. Usage: scripts/decode_dev/run.sh [modes...]
#   modes: check check-small sanitize bench sweep (default: check sanitize bench)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_DIR:-build/decode_dev}
mkdir -p "$BUILD"
if [[ -z "${SKIP_BUILD:-}" || ! -x "$BUILD/decode_test" ]]; then
  time nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas=-v -I csrc -I csrc/include \
    -o "$BUILD/decode_test" scripts/decode_dev/decode_test.cu csrc/decode_gemm.cu 2> "$BUILD/ptxas.txt" || {
    cat "$BUILD/ptxas.txt"; exit 1; }
  grep -E "error|spill|stack frame" "$BUILD/ptxas.txt" | sort | uniq -c | head -20 || true
fi
modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(check sanitize bench)
rc=0
for mode in "${modes[@]}"; do
  echo "=== $mode"
  if [[ $mode == sanitize ]]; then
    timeout "${MODE_TIMEOUT:-150}" compute-sanitizer --tool memcheck --error-exitcode 9 "$BUILD/decode_test" check-small
  else
    timeout "${MODE_TIMEOUT:-150}" "$BUILD/decode_test" "$mode"
  fi
  r=$?
  [[ $r -ne 0 ]] && { echo "=== $mode exited with $r"; rc=$r; }
done
exit $rc
