"""scikit-build-core dynamic-metadata provider: the wheel's dependencies.

The wheel links the shared CUDA runtime (W4A16_CUDART=Shared) and finds libcudart through an RPATH into the
NVIDIA runtime wheel of the CUDA major it was built with, so that wheel is a runtime dependency:

    CUDA 12  ->  nvidia-cuda-runtime-cu12>=12.<minor>,<13   (libcudart.so.12 in nvidia/cuda_runtime/lib)
    CUDA 13  ->  nvidia-cuda-runtime>=13.<minor>,<14        (libcudart.so.13 in nvidia/cu13/lib)

The major/minor come from the nvcc that CMake will use (same search order: $CUDACXX, CMAKE_CUDA_COMPILER in
$CMAKE_ARGS, $CUDA_HOME / $CUDA_PATH, nvcc on PATH, /usr/local/cuda). Overrides:

    W4A16_CUDA_MAJOR=12|13[.minor]   build metadata for that toolkit (CMakeLists.txt checks it matches)
    W4A16_CUDA_RUNTIME_DEP=none      no runtime wheel (conda: cudart comes from cuda-cudart; static cudart)

The chosen major is exported as W4A16_WHEEL_CUDA_MAJOR for the CMake run of the same build, which fails if
the toolkit it links against has another major.

pyproject.toml:
    [project] dynamic = ["dependencies"]
    [tool.scikit-build.metadata.dependencies]
    provider = "w4a16_dist_meta"
    provider-path = "scripts/packaging"
    base = ["numpy>=1.23"]
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

__all__ = ["cuda_runtime_requirement", "detect_cuda_version", "dynamic_metadata"]

# CUDA major -> (PyPI name of the runtime wheel, folder of libcudart inside site-packages)
RUNTIME_WHEELS = {
    12: ("nvidia-cuda-runtime-cu12", "nvidia/cuda_runtime/lib"),
    13: ("nvidia-cuda-runtime", "nvidia/cu13/lib"),
}


def _nvcc_candidates() -> list[str]:
    out = []
    if os.environ.get("CUDACXX"):
        out.append(os.environ["CUDACXX"])
    m = re.search(r"-DCMAKE_CUDA_COMPILER(?::\w+)?=(\S+)", os.environ.get("CMAKE_ARGS", ""))
    if m:
        out.append(shlex.split(m.group(1))[0])
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDAToolkit_ROOT"):
        if os.environ.get(var):
            out.append(os.path.join(os.environ[var], "bin", "nvcc"))
    which = shutil.which("nvcc")
    if which:
        out.append(which)
    out.append("/usr/local/cuda/bin/nvcc")
    return out


def detect_cuda_version() -> tuple[int, int]:
    """(major, minor) of the CUDA toolkit the build will use."""
    forced = os.environ.get("W4A16_CUDA_MAJOR", "").strip()
    if forced:
        parts = forced.split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    for nvcc in _nvcc_candidates():
        if not (os.path.isfile(nvcc) and os.access(nvcc, os.X_OK)):
            continue
        text = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"release (\d+)\.(\d+)", text)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise RuntimeError(
        "w4a16-gemm: no nvcc found to choose the CUDA runtime dependency; set CUDACXX or CUDA_HOME, or "
        "W4A16_CUDA_MAJOR=12|13 (or W4A16_CUDA_RUNTIME_DEP=none for a build without the runtime wheel)"
    )


def cuda_runtime_requirement(major: int, minor: int) -> str:
    if major not in RUNTIME_WHEELS:
        raise RuntimeError(f"w4a16-gemm: no NVIDIA runtime wheel known for CUDA {major} (known: {sorted(RUNTIME_WHEELS)})")
    name = RUNTIME_WHEELS[major][0]
    return f"{name}>={major}.{minor},<{major + 1}"


def dynamic_metadata(field, settings=None, project=None):  # noqa: ARG001 - scikit-build-core's signature
    if field != "dependencies":
        raise RuntimeError(f"w4a16_dist_meta provides 'dependencies' only, not {field!r}")
    settings = dict(settings or {})
    unknown = set(settings) - {"base"}
    if unknown:
        raise RuntimeError(f"w4a16_dist_meta: unknown settings {sorted(unknown)}")
    deps = list(settings.get("base", []))
    if os.environ.get("W4A16_CUDA_RUNTIME_DEP", "").strip().lower() in ("none", "0", "off", "no"):
        os.environ["W4A16_WHEEL_CUDA_MAJOR"] = "none"
        return deps
    major, minor = detect_cuda_version()
    os.environ["W4A16_WHEEL_CUDA_MAJOR"] = str(major)
    return [*deps, cuda_runtime_requirement(major, minor)]
