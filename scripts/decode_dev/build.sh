#!/usr/bin/env bash
# Builds the standalone decode-kernel test/benchmark (decode_test.cu + a decode kernel source) into $BUILD_DIR
# (default build/decode_dev). Sourced by run.sh, profile.sh, stalls.sh and racecheck.sh.
#   DECODE_SRC  the kernel source (default csrc/decode_gemm.cu, the library's; racecheck.sh builds variants too)
#   DECODE_BIN  the binary's name in $BUILD_DIR (default decode_test)
#   NVCC_EXTRA  extra nvcc flags (e.g. -D switches of an experiment copy of the kernel)
#   SKIP_BUILD=1 reuses an existing binary. ptxas's register/spill report goes to $BUILD_DIR/$DECODE_BIN.ptxas.txt.
BUILD=${BUILD_DIR:-build/decode_dev}
DECODE_BIN=${DECODE_BIN:-decode_test}
mkdir -p "$BUILD"
if [[ -z "${SKIP_BUILD:-}" || ! -x "$BUILD/$DECODE_BIN" ]]; then
  # cute's wgmma wrappers (the m > 16 kernels): the nvidia-cutlass wheel's headers, as in CMakeLists.txt
  CUTLASS_INC=${CUTLASS_INC:-$(python3 -c "import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source', 'include'))")} \
    || { echo "decode_dev/build.sh: pip install nvidia-cutlass==4.2.0.0 (or set CUTLASS_INC)"; exit 1; }
  nvcc -O3 -std=c++17 ${NVCC_EXTRA:-} -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas=-v -I csrc -I csrc/include \
    -I "$CUTLASS_INC" \
    -o "$BUILD/$DECODE_BIN" scripts/decode_dev/decode_test.cu "${DECODE_SRC:-csrc/decode_gemm.cu}" \
    2> "$BUILD/$DECODE_BIN.ptxas.txt" || { cat "$BUILD/$DECODE_BIN.ptxas.txt"; exit 1; }
  grep -E "error|spill|stack frame" "$BUILD/$DECODE_BIN.ptxas.txt" | sort | uniq -c | head -20 || true
fi
