#!/usr/bin/env bash
# conda-build script (linux-64). One CMake build tree gives both halves of the package, so the CUTLASS
# kernels compile once:
#   1. plain CMake install into $PREFIX: lib/libw4a16_gemm.so*, include/w4a16/w4a16.h,
#      lib/cmake/w4a16_gemm/ (find_package(w4a16_gemm)), bin/w4a16_only_test
#   2. pip install of the Python package from the same build tree (-Cbuild-dir): only the extension _core is
#      compiled and the library relinked; the package uses $PREFIX/lib/libw4a16_gemm.so.0 and cuda-cudart's
#      libcudart.so.<major> ($ORIGIN/../../.. from site-packages/w4a16_gemm, W4A16_PYTHON_LIBS=prefix).
#      Its console script w4a16_only_test (execs site-packages/w4a16_gemm/bin/w4a16_only_test) replaces the
#      ELF of step 1 in $PREFIX/bin: same program, same exit codes.
# Conda variables used: PREFIX, SRC_DIR, PYTHON, CPU_COUNT, CMAKE_ARGS (conda-forge's toolchain flags);
# W4A16_KERNELS (script_env) selects a dev subset of the kernels.
set -euxo pipefail

# sm_90a only. CMakeLists.txt passes -gencode=arch=compute_90a,code=sm_90a itself and sets
# CMAKE_CUDA_ARCHITECTURES OFF, so the CUDAARCHS that conda-forge's CUDA compiler exports (or a
# -DCMAKE_CUDA_ARCHITECTURES in CMAKE_ARGS) cannot change the architecture; set it explicitly anyway, so
# that CMake's compiler checks target the same one.
export CUDAARCHS="90a-real"

# A CUTLASS SM90 translation unit peaks at ~7.5 GB of RAM: run as many compiles as memory allows.
mem_gb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576 ))
jobs=$(( mem_gb / 9 ))
[ "${jobs}" -ge 1 ] || jobs=1
[ "${jobs}" -le "${CPU_COUNT:-2}" ] || jobs=${CPU_COUNT:-2}
export CMAKE_BUILD_PARALLEL_LEVEL="${jobs}"

build_dir="${SRC_DIR}/build-conda"
cutlass_include="${SRC_DIR}/cutlass/cutlass_library/source/include"
test -f "${cutlass_include}/cutlass/cutlass.h"

# shellcheck disable=SC2086  # CMAKE_ARGS is a list of flags
cmake -S "${SRC_DIR}" -B "${build_dir}" -G Ninja ${CMAKE_ARGS:-} \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="${PREFIX}" \
  -DCMAKE_INSTALL_LIBDIR=lib \
  -DPython3_EXECUTABLE="${PYTHON}" \
  -DW4A16_BUILD_PYTHON=OFF \
  -DW4A16_CUDART=Shared \
  -DW4A16_CUTLASS_INCLUDE_DIR="${cutlass_include}" \
  -DW4A16_KERNELS="${W4A16_KERNELS:-}"
cmake --build "${build_dir}" --parallel "${jobs}"
cmake --install "${build_dir}" --strip

# The Python package: no runtime-wheel dependency in its metadata (cudart comes from cuda-cudart).
export W4A16_CUDA_RUNTIME_DEP=none
"${PYTHON}" -m pip install "${SRC_DIR}" -vv --no-deps --no-build-isolation --no-compile \
  -Cbuild-dir="${build_dir}" \
  -Ccmake.define.W4A16_BUILD_PYTHON=ON \
  -Ccmake.define.W4A16_PYTHON_LIBS=prefix \
  -Ccmake.define.W4A16_CUDART=Shared \
  -Ccmake.define.W4A16_CUTLASS_INCLUDE_DIR="${cutlass_include}"
