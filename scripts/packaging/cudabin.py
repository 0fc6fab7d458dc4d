"""Helpers shared by the distribution checks: find cuobjdump and read which architectures an ELF's cubins target."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys


def find_cuobjdump(cuda_root: str) -> str | None:
    """The toolkit's cuobjdump, or the one of PyPI's nvidia-cuda-cuobjdump wheel (nvidia/cu13/bin)."""
    for c in (os.path.join(cuda_root, "bin", "cuobjdump"), shutil.which("cuobjdump")):
        if c and os.access(c, os.X_OK):
            return c
    for base in sys.path:
        for c in sorted(glob.glob(os.path.join(base, "nvidia", "cu*", "bin", "cuobjdump"))):
            if os.access(c, os.X_OK):
                return c
    return None


def cubin_archs(cuobjdump: str, path: str) -> tuple[set[str], set[str], bool]:
    """(archs of cubins holding kernels, archs of cubins without any function, has PTX) of one ELF file.
    nvcc's device-link step (CUDA_RESOLVE_DEVICE_SYMBOLS) adds a kernel-less stub for nvcc's default arch."""
    out = subprocess.run([cuobjdump, "--dump-resource-usage", path], capture_output=True, text=True).stdout
    kernels, stubs = set(), set()
    for block in re.split(r"\n(?=Fatbin \w+ code:)", out):
        m = re.search(r"arch = (\w+)", block)
        if m:
            (kernels if "Function " in block else stubs).add(m.group(1))
    return kernels, stubs - kernels, "Fatbin ptx code" in out
