#!/usr/bin/env bash
# One device call: build, then the benchmark grid under the v2 protocol; results under $OUT.
#   bash benchmarks/run_device.sh                 full grid: w4a16 vs cuBLAS (+ fbgemm when its wheel is carried)
#   bash benchmarks/run_device.sh --configs all   also every scale-only config (data for csrc/heuristic.cpp)
# Extra arguments go to `python -m w4a16_gemm bench`. Carry .whl/ with nvidia-cutlass (and optionally the peers'
# wheels: fbgemm_gpu_genai-1.6.0, fbgemm's build for torch 2.11; gemlite with tqdm) for the device, which reaches
# no package index.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_setup.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
"$W4A16_PY" -m w4a16_gemm bench --shapes benchmarks/bench_shapes.json --out "$OUT" --no-progress "$@" 2>&1 | tee "$OUT/bench.txt"
