#!/usr/bin/env bash
# One device call for performance work: build (W4A16_KERNELS=<globs> for a subset), the GPU tests when
# PROBE_TESTS=1 (the bench checks every timed point against float64 first anyway), the decode kernel's own PDL
# A/B table (scripts/decode_dev; SKIP_DECODE=1 skips it), then `python -m w4a16_gemm bench` with the given
# arguments. Logs under $OUT: build.log, pytest.log, decode.txt, bench.{txt,json,csv,png}.
#   bash scripts/perf_probe.sh --m 16,32,64 --impls w4a16,w4a16-nopdl,cublas --configs all --no-latency
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_setup.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
if [ -n "${PROBE_TESTS:-}" ]; then
  echo "== GPU tests"
  timeout "${TEST_TIMEOUT:-240}" "$W4A16_PY" -m pytest tests -q -x -p no:cacheprovider -m gpu 2>&1 | tee "$OUT/pytest.log" | tail -5
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "perf_probe: GPU tests failed, not timing"; exit 1; }
fi
if [ -z "${SKIP_DECODE:-}" ]; then
  echo "== decode kernel: PDL A/B"
  MODE_TIMEOUT=150 bash scripts/decode_dev/run.sh bench 2>&1 | tee "$OUT/decode.txt" | tail -30
fi
echo "== bench $*"
timeout "${BENCH_TIMEOUT:-400}" "$W4A16_PY" -m w4a16_gemm bench --shapes benchmarks/bench_shapes.json --out "$OUT" \
  --no-progress "$@" 2>&1 | tee "$OUT/bench.txt"
