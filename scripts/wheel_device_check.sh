#!/usr/bin/env bash
# One device call for the wheel built on a CPU machine (#5) and the benchmark of record (#4):
#   bash scripts/wheel_device_check.sh [WHEEL_DIR]      (default .devdist: the cp312 wheel + numpy + the runtime wheel)
#   1. pip-installs the wheel next to the machine's torch (no index, no build) and again into a fresh venv with
#      nothing but the carried wheels; checks where libcudart comes from and runs w4a16_only_test;
#   2. the whole test suite (GPU tests included) against the installed wheel;
#   3. ncu on the decode kernel (M = 1 and 16, 4096 x 4096) and the CUTLASS choice at M = 32: what limits them;
#   4. `python -m w4a16_gemm bench` over the whole grid (w4a16, cuBLAS, fbgemm when its wheel is in .whl/).
# Files under $OUT: wheel.log, pytest.log, ncu.txt, gpu.txt, bench.{txt,json,csv,png}.
# STEPS (default "tests ncu bench") picks what runs after the install; e.g. STEPS=bench for a grid rerun when the
# tests have passed in an earlier call (one call is limited to 10 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
D=${1:-.devdist}
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
W=$(ls "$D"/w4a16_gemm-*-cp312-*.whl | head -1)
[ -f "$W" ] || { echo "wheel_device_check: no cp312 wheel in $D"; exit 1; }
# The bench's peer columns: fbgemm-gpu-genai and gemlite (with tqdm, its one dependency torch does not bring), if
# their wheels are carried there
BENCH_WHEELS=${BENCH_WHEELS:-.whl}
peers=$(compgen -G "$BENCH_WHEELS/fbgemm*.whl"; compgen -G "$BENCH_WHEELS/gemlite*.whl"; compgen -G "$BENCH_WHEELS/tqdm*.whl")
if [[ -n $peers ]]; then
  # shellcheck disable=SC2086  # one wheel path per word
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $peers && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
{
  echo "== wheel $(basename "$W") ($(du -k "$W" | cut -f1) KB)"
  python3 -V; ldd --version | head -1
  echo "== A: pip install --no-index next to torch"
  python3 -m pip install --no-index --find-links "$D" "$W" 2>&1 | tail -1
  env -u LD_LIBRARY_PATH python3 -c "
import os, torch, w4a16_gemm as w
maps = open('/proc/self/maps').read().split()
print('w4a16_gemm', w.__version__, 'from', os.path.dirname(w.__file__))
print('libcudart loaded:', sorted({p for p in maps if 'libcudart.so' in p}))
print(w.device_info())"
  BIN=$(python3 -c 'import sys,os;print(os.path.dirname(sys.executable))')
  for args in "" "1 57344 8192" "32 4096 14336" "4096 8192 8192" "16 8192 8192 --zeros --group-size 64" "3 72 192"; do
    echo "\$ w4a16_only_test $args"; env -u LD_LIBRARY_PATH "$BIN/w4a16_only_test" $args 2>&1 | tail -3; echo "exit ${PIPESTATUS[0]}"
  done
  echo "== B: fresh venv with only the carried wheels"
  python3 -m venv /tmp/fresh && /tmp/fresh/bin/pip install -q --no-index --find-links "$D" "$W" \
    && /tmp/fresh/bin/pip list 2>/dev/null | grep -iE "w4a16|numpy|nvidia"
  env -u LD_LIBRARY_PATH /tmp/fresh/bin/python -c "
import numpy as np, w4a16_gemm as w
rng = np.random.default_rng(0)
q = w.quantize(rng.standard_normal((4096, 4096)).astype(np.float32), group_size=128)
x = rng.standard_normal((16, 4096)).astype(np.float16)
y = w.gemm(x, q); ref = w.reference_gemm(x, q)
err = np.linalg.norm(y.astype(np.float64) - ref) / np.linalg.norm(ref)
maps = open('/proc/self/maps').read().split()
print('fresh venv (no torch): gemm 16x4096x4096 rel err %.2e' % err, sorted({p for p in maps if 'libcudart.so' in p}))
assert err < 1e-2"
  echo "fresh venv exit $?"
} 2>&1 | tee "$OUT/wheel.log"
STEPS=" ${STEPS:-tests ncu bench} "
if [[ $STEPS == *" tests "* ]]; then
  echo "== tests against the installed wheel"
  # The package sits under python/ here, not on sys.path: the tests import the installed wheel.
  python3 -c "import w4a16_gemm; print('testing', w4a16_gemm.__file__)" | tee "$OUT/pytest.log"
  timeout 420 python3 -m pytest tests -q -p no:cacheprovider 2>&1 | tee -a "$OUT/pytest.log" | tail -6
fi
echo "== ncu"
if [[ $STEPS == *" ncu "* ]] && command -v ncu >/dev/null; then
  BIN=$(python3 -c 'import sys,os;print(os.path.dirname(sys.executable))')
  for args in "1 4096 4096" "16 4096 4096" "32 4096 4096"; do
    echo "##### w4a16_only_test $args"
    timeout 120 ncu --target-processes all -c 1 -k regex:'decode_kernel|device_kernel' \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats \
      --section LaunchStats --section Occupancy "$BIN/w4a16_only_test" $args --no-check 2>&1 | grep -vE "^==PROF==|^\s*$" | head -150
  done 2>&1 | tee "$OUT/ncu.txt" | grep -E "#####|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Issue Slots Busy|No Eligible|Stall|Grid Size|Cluster" | head -40
fi
[[ $STEPS == *" bench "* ]] || exit 0
echo "== bench (whole grid)"
timeout "${BENCH_TIMEOUT:-330}" python3 -m w4a16_gemm bench --shapes benchmarks/bench_shapes.json --out "$OUT" --no-progress \
  "${@:2}" 2>&1 | tee "$OUT/bench.txt" | tail -20
