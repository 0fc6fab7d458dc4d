#!/usr/bin/env bash
# A short device call between full runs: the decode kernel's standalone checks and a chosen part of the GPU tests.
#   bash scripts/quick_device_check.sh [PYTEST_ARGS...]
#   1. build/decode_dev/dt_lib (scripts/decode_dev/build.sh with DECODE_BIN=dt_lib, built on the CPU machine and
#      carried): `thread`, `check`, then DT_MODES (default none; e.g. "mid narrow", with MID_MS / NARROW_* set);
#   2. pip-installs the cp312 wheel of .devdist next to the machine's torch and runs pytest with PYTEST_ARGS
#      (default: tests/test_concurrency.py tests/test_gpu.py).
# Logs under $OUT (default device-out/quick): decode_<mode>.txt, pytest.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/device-out/quick}
mkdir -p "$OUT"
DT=build/decode_dev/dt_lib
if [[ -x $DT ]]; then
  for mode in thread check ${DT_MODES:-}; do
    timeout "${DT_TIMEOUT:-200}" "$DT" "$mode" > "$OUT/decode_$mode.txt" 2>&1
    echo "decode_test $mode: exit $?, $(tail -1 "$OUT/decode_$mode.txt")"
  done
else
  echo "quick_device_check: no $DT (build it with DECODE_BIN=dt_lib scripts/decode_dev/build.sh and carry build/decode_dev)"
fi
wheels=(.devdist/w4a16_gemm-*-cp312-*.whl)
W=${wheels[0]}
if [[ -f $W ]]; then
  python3 -m pip install -q --no-index --find-links .devdist "$W" 2>&1 | tail -1
  (($#)) || set -- tests/test_concurrency.py tests/test_gpu.py
  timeout "${PYTEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider "$@" > "$OUT/pytest.log" 2>&1
  echo "pytest: exit $?, $(tail -1 "$OUT/pytest.log")"
else
  echo "quick_device_check: no cp312 wheel in .devdist"
fi
