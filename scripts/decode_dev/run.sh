#!/usr/bin/env bash
# Build and run the decode-kernel test/benchmark. Usage: scripts/decode_dev/run.sh [modes...]
#   modes: check check-small sanitize bench sweep (default: check sanitize bench)
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/decode_dev/build.sh
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
