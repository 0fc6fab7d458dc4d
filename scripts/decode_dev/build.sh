#!/usr/bin/env bash
# Builds the standalone decode-kernel test/benchmark (decode_test.cu + the library's decode_gemm.cu) into
# $BUILD_DIR (default build/decode_dev). Sourced by run.sh, profile.sh and stalls.sh; SKIP_BUILD=1 reuses an
# existing binary. ptxas's register/spill report goes to $BUILD_DIR/ptxas.txt.
BUILD=${BUILD_DIR:-build/decode_dev}
mkdir -p "$BUILD"
if [[ -z "${SKIP_BUILD:-}" || ! -x "$BUILD/decode_test" ]]; then
  nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas=-v -I csrc -I csrc/include \
    -o "$BUILD/decode_test" scripts/decode_dev/decode_test.cu csrc/decode_gemm.cu 2> "$BUILD/ptxas.txt" || {
    cat "$BUILD/ptxas.txt"; exit 1; }
  grep -E "error|spill|stack frame" "$BUILD/ptxas.txt" | sort | uniq -c | head -20 || true
fi
