"""conda-build runs this in the test environment (after test/commands): the package imports, and on a
machine without a usable SM90 GPU every entry point fails with the dedicated, clear error."""

import os
import shutil
import subprocess
import sys

import numpy as np

import w4a16_gemm as w4

info = w4.device_info()
print("w4a16_gemm", w4.__version__, "from", os.path.dirname(w4.__file__), "device:", info)

exe = os.path.join(os.path.dirname(w4.__file__), "bin", "w4a16_only_test")
assert os.access(exe, os.X_OK), f"{exe} is not executable"
assert shutil.which("w4a16_only_test"), "w4a16_only_test is not on PATH"

if info["supported"]:
    print("SM90 GPU present: the GPU tests run from test/commands (pytest -m gpu)")
    sys.exit(0)

q = w4.quantize(np.ones((64, 16), np.float32), group_size=64)
try:
    w4.gemm(np.ones((1, 64), np.float16), q)
except w4.NoSM90DeviceError as exc:
    print("gemm without an SM90 GPU -> NoSM90DeviceError:", exc)
else:
    raise SystemExit("gemm ran without an SM90 GPU: expected w4a16_gemm.NoSM90DeviceError")

r = subprocess.run(["w4a16_only_test", "1", "16", "64", "--group-size", "64"], capture_output=True, text=True)
print("w4a16_only_test 1 16 64 --group-size 64 ->", r.returncode, r.stderr.strip())
assert r.returncode == 3 and "no SM90 GPU" in r.stderr, (r.returncode, r.stdout, r.stderr)
