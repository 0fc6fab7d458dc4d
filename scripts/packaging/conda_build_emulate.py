#!/usr/bin/env python3
"""Run recipe/build.sh the way conda-build would, into a temporary prefix, then the recipe's test section
against a fresh prefix holding only the package's files (no conda needed; conda channels are unreachable here).

What conda-build does, and what stands in for it here:
  source        `path: ..` -> the repository's files (git ls-files), the CUTLASS url -> that file, fetched from
                PyPI (or `pip download`) and checked against the recipe's sha256, unpacked into its folder
  host env      a venv as $PREFIX (bin/python, lib/pythonX.Y/site-packages like a conda prefix) with the host
                requirements from PyPI; cuda-cudart -> libcudart.so.<major> copied from the CUDA toolkit into
                $PREFIX/lib; compilers, cmake and ninja from the machine
  build         recipe/build.sh with conda-build's variables (PREFIX, BUILD_PREFIX, SRC_DIR, RECIPE_DIR,
                PYTHON, SP_DIR, PY_VER, CPU_COUNT, SHLIB_EXT, PKG_*, CMAKE_ARGS as conda-forge sets it),
                plus a hostile -DCMAKE_CUDA_ARCHITECTURES and CUDAARCHS to prove sm_90a cannot be overridden
  package       the files the build added to $PREFIX; checked: every file where a conda package needs it,
                no RPATH outside $ORIGIN, no libcuda/libcudart shipped, sm_90a only, kernels compiled once
  test          a second venv gets only those files (prefix path replaced in text files, as conda does), the
                run + test requirements and cuda-cudart's libcudart; then test/imports, recipe/run_test.py and
                test/commands run there with its bin/ first on PATH and no LD_LIBRARY_PATH

    python scripts/packaging/conda_build_emulate.py [--work DIR] [--kernels GLOB]
Default kernels: the dev subset "*n128_m16*" (two instantiations); --kernels "" builds all.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import render_recipe  # noqa: E402
from cudabin import cubin_archs, find_cuobjdump  # noqa: E402

ROOT = render_recipe.ROOT
RECIPE = render_recipe.RECIPE


def log(msg: str) -> None:
    print(f"conda_build_emulate: {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def cuda_toolkit() -> tuple[str, str]:
    """(root, 'major.minor') of the CUDA toolkit: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then nvcc's folder."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for root in filter(None, roots):
        exe = os.path.join(root, "bin", "nvcc")
        if os.access(exe, os.X_OK):
            text = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
            return os.path.realpath(root), re.search(r"release (\d+\.\d+)", text).group(1)
    raise SystemExit("conda_build_emulate: no CUDA toolkit found (set CUDA_HOME)")


def copy_source(dest: str) -> None:
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                             capture_output=True, check=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        raise SystemExit("conda_build_emulate: git ls-files found no files to copy")
    for rel in files:
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def fetch_url_source(src: dict, cache: str) -> str:
    name = os.path.basename(src["url"])
    path = os.path.join(cache, name)
    candidates = [path, os.path.join(ROOT, ".whl", name)]
    for c in candidates:
        if os.path.isfile(c) and hashlib.sha256(open(c, "rb").read()).hexdigest() == src["sha256"]:
            return c
    os.makedirs(cache, exist_ok=True)
    try:
        urllib.request.urlretrieve(src["url"], path)
        how = "url"
    except OSError as exc:  # fall back to pip (a mirror or a proxy may serve the index only)
        log(f"download of {src['url']} failed ({exc}); trying pip download")
        m = re.match(r"([A-Za-z0-9_]+)-([\d.]+)-", name)
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", cache,
             f"{m.group(1).replace('_', '-')}=={m.group(2)}"])
        how = "pip download"
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != src["sha256"]:
        raise SystemExit(f"conda_build_emulate: sha256 of {name} is {digest}, the recipe says {src['sha256']}")
    log(f"source {name}: fetched by {how}, sha256 matches the recipe")
    return path


def snapshot(prefix: str) -> dict[str, float]:
    out = {}
    for dirpath, _, files in os.walk(prefix):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, prefix)] = os.lstat(p).st_mtime
    return out


def is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def dynamic_section(path: str) -> str:
    return subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout


def pip_specs(specs: list[str]) -> list[str]:
    """conda specs of run/test requirements -> pip requirements (the names are the same on PyPI here)."""
    skip = {"python", "cuda-version", "pip"}
    out = []
    for s in specs:
        parts = str(s).split(None, 1)
        if parts[0] in skip or parts[0].startswith("__"):
            continue
        out.append(parts[0] + (parts[1].replace(" ", "") if len(parts) > 1 else ""))
    return out


def make_prefix(path: str, cudart_libs: list[str]) -> str:
    run([sys.executable, "-m", "venv", path])
    run([os.path.join(path, "bin", "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    os.makedirs(os.path.join(path, "lib"), exist_ok=True)
    for lib in cudart_libs:  # what cuda-cudart puts into a conda prefix
        shutil.copy2(lib, os.path.join(path, "lib"), follow_symlinks=True)
    return os.path.join(path, "bin", "python")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", help="work folder (default: a new temporary one, removed on success)")
    ap.add_argument("--kernels", default=os.environ.get("W4A16_KERNELS", "*n128_m16*"),
                    help='kernel globs for the build (default "*n128_m16*"; "" = all)')
    args = ap.parse_args(argv)
    t0 = time.time()
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)
            log("ERROR: " + msg)

    cuda_root, cuda_version = cuda_toolkit()
    cuda_major = cuda_version.split(".")[0]
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    variants = render_recipe.load_variants()
    variant = next((v for v in variants if v["cuda_compiler_version"].split(".")[0] == cuda_major
                    and v["python"].startswith(pyver + ".")), None)
    if variant is None:
        raise SystemExit(f"conda_build_emulate: no recipe variant for CUDA {cuda_major} / Python {pyver}")
    meta = render_recipe.render(variant, render_recipe.load_pyproject()["project"]["version"])
    log(f"variant cuda {variant['cuda_compiler_version']} python {pyver} (toolkit {cuda_version} at {cuda_root})")

    work = args.work or tempfile.mkdtemp(prefix="w4a16-conda-")
    os.makedirs(work, exist_ok=True)
    src_dir, prefix, test_prefix = (os.path.join(work, d) for d in ("src", "prefix", "test_prefix"))
    build_prefix = os.path.join(work, "build_env")
    for d in (src_dir, prefix, test_prefix, build_prefix):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(build_prefix)

    # -- source
    copy_source(src_dir)
    sources = meta["source"] if isinstance(meta["source"], list) else [meta["source"]]
    for s in sources:
        if "url" in s:
            archive = fetch_url_source(s, os.path.join(work, "cache"))
            with zipfile.ZipFile(archive) as z:
                z.extractall(os.path.join(src_dir, s.get("folder", "")))

    # -- host environment
    cudart_libs = sorted(glob.glob(os.path.join(cuda_root, "lib64", f"libcudart.so.{cuda_major}*")))
    need(bool(cudart_libs), f"no libcudart.so.{cuda_major} in {cuda_root}/lib64")
    python = make_prefix(prefix, cudart_libs)
    host = pip_specs([h for h in meta["requirements"]["host"] if not str(h).startswith("cuda-")])
    run([python, "-m", "pip", "install", "-q", *host])
    sp_dir = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    before = snapshot(prefix)

    # -- build
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "LD_LIBRARY_PATH"))}
    env.update(
        PREFIX=prefix, BUILD_PREFIX=build_prefix, SRC_DIR=src_dir, RECIPE_DIR=RECIPE, PYTHON=python,
        SP_DIR=sp_dir, PY_VER=pyver, CONDA_PY=pyver.replace(".", ""), CPU_COUNT=str(os.cpu_count() or 2),
        SHLIB_EXT=".so", PKG_NAME=meta["package"]["name"], PKG_VERSION=str(meta["package"]["version"]),
        PKG_BUILDNUM=str(meta["build"]["number"]), target_platform="linux-64", build_platform="linux-64",
        PATH=f"{prefix}/bin:{os.path.join(cuda_root, 'bin')}:{env.get('PATH', '')}",
        # conda-forge's CMAKE_ARGS, plus architectures that CMakeLists.txt must ignore (it passes sm_90a itself)
        CMAKE_ARGS=f"-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX={prefix} -DCMAKE_INSTALL_LIBDIR=lib "
                   f"-DCMAKE_PROGRAM_PATH={build_prefix}/bin;{prefix}/bin -DCMAKE_CUDA_ARCHITECTURES=75-real",
        CUDAARCHS="all-major", W4A16_KERNELS=args.kernels,
    )
    env.pop("CMAKE_GENERATOR", None)
    build_log = os.path.join(work, "build.log")
    t_build = time.time()
    with open(build_log, "w") as f:
        rc = subprocess.run(["bash", os.path.join(RECIPE, "build.sh")], cwd=src_dir, env=env,
                            stdout=f, stderr=subprocess.STDOUT).returncode
    build_s = time.time() - t_build
    if rc != 0:
        print(open(build_log).read()[-6000:])
        log(f"recipe/build.sh FAILED (exit {rc}); log {build_log}")
        return 1
    log(f"recipe/build.sh passed in {build_s:.0f} s (W4A16_KERNELS='{args.kernels}')")
    text = open(build_log).read()

    # -- package contents
    after = snapshot(prefix)
    files = sorted(p for p, m in after.items() if before.get(p) != m and "__pycache__" not in p)
    spr = os.path.relpath(sp_dir, prefix)
    expected = [
        "lib/libw4a16_gemm.so", "lib/libw4a16_gemm.so.0", f"lib/libw4a16_gemm.so.{meta['package']['version']}",
        "include/w4a16/w4a16.h",
        "lib/cmake/w4a16_gemm/w4a16_gemmConfig.cmake", "lib/cmake/w4a16_gemm/w4a16_gemmConfigVersion.cmake",
        "lib/cmake/w4a16_gemm/w4a16_gemmTargets.cmake", "lib/cmake/w4a16_gemm/w4a16_gemmTargets-release.cmake",
        "bin/w4a16_only_test",
        f"{spr}/w4a16_gemm/__init__.py", f"{spr}/w4a16_gemm/_cli.py", f"{spr}/w4a16_gemm/bin/w4a16_only_test",
    ]
    for e in expected:
        need(e in files, f"package lacks {e}")
    core = [f for f in files if re.fullmatch(re.escape(spr) + r"/w4a16_gemm/_core\.cpython-.*\.so", f)]
    need(len(core) == 1, f"package should hold one _core extension, found {core}")
    need(any(re.fullmatch(re.escape(spr) + r"/w4a16_gemm-[\d.]+\.dist-info/RECORD", f) for f in files), "no dist-info")
    need(not [f for f in files if f.startswith(spr) and "libw4a16_gemm" in f],
         "site-packages holds a second libw4a16_gemm (prefix layout uses lib/)")
    need(not [f for f in files if re.search(r"libcuda(rt)?\.so", os.path.basename(f))],
         "the package ships libcuda/libcudart (cuda-cudart and the driver provide them)")
    outside = [f for f in files if f.split("/")[0] not in ("bin", "lib", "include", "share")]
    need(not outside, f"files outside bin/ lib/ include/ share/: {outside}")
    meta_file = next((f for f in files if f.endswith(".dist-info/METADATA")), None)
    if meta_file:
        md = open(os.path.join(prefix, meta_file)).read()
        need("nvidia-cuda-runtime" not in md, "conda package's dist-info requires the PyPI runtime wheel")
    elfs = [f for f in files if not os.path.islink(os.path.join(prefix, f)) and is_elf(os.path.join(prefix, f))]
    for f in elfs:
        dyn = dynamic_section(os.path.join(prefix, f))
        for rp in re.findall(r"\((?:RPATH|RUNPATH)\).*\[(.*)\]", dyn):
            bad = [p for p in rp.split(":") if not p.startswith("$ORIGIN")]
            need(not bad, f"{f}: RPATH entries outside $ORIGIN: {bad}")
        need("libcuda.so" not in dyn, f"{f} links libcuda directly")
    need(any("libcudart.so." + cuda_major in dynamic_section(os.path.join(prefix, f)) for f in elfs),
         "nothing links the shared libcudart (W4A16_CUDART=Shared)")
    # sm_90a only, whatever CUDAARCHS / CMAKE_CUDA_ARCHITECTURES said
    cuobjdump = find_cuobjdump(cuda_root)
    archs, stubs = set(), set()
    if cuobjdump is None:
        need(False, "no cuobjdump to check the architectures (pip install nvidia-cuda-cuobjdump)")
    else:
        for f in elfs:
            a, s, ptx = cubin_archs(cuobjdump, os.path.join(prefix, f))
            archs |= a
            stubs |= s
            need(not ptx, f"{f} carries PTX (sm_90a cubins only expected)")
        need(archs == {"sm_90a"}, f"the package's kernels are compiled for {archs or 'nothing'}, expected sm_90a only")
    need("compute_75" not in text and "sm_75" not in text, "an sm_75 compile appeared: the architecture was overridden")
    # the kernels compiled once (step 1); the pip step only builds _core and relinks
    kernel_compiles = re.findall(r"Building CUDA object \S*generated/(w4a16_sm90_\w+)\.cu\.o", text)
    need(len(kernel_compiles) == len(set(kernel_compiles)) and kernel_compiles,
         f"kernels compiled more than once: {kernel_compiles}")
    log(f"package: {len(files)} files, {len(elfs)} ELF; kernels {sorted(archs)}"
        + (f" (+ device-link stub without kernels: {sorted(stubs)})" if stubs else "") + "; "
        f"kernels compiled once ({len(kernel_compiles)})")

    # -- test environment: only the package's files (+ run/test requirements)
    tpython = make_prefix(test_prefix, cudart_libs)
    tsp = subprocess.run([tpython, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    need(os.path.relpath(tsp, test_prefix) == spr, "test prefix has another site-packages layout")
    binary_with_prefix = []
    for f in files:
        src, dst = os.path.join(prefix, f), os.path.join(test_prefix, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            if os.path.lexists(dst):
                os.remove(dst)
            os.symlink(os.readlink(src), dst)
            continue
        data = open(src, "rb").read()
        if prefix.encode() in data:
            if b"\0" in data:
                binary_with_prefix.append(f)
            else:  # conda replaces the build prefix in text files at install time
                data = data.replace(prefix.encode(), test_prefix.encode())
        with open(dst, "wb") as out:
            out.write(data)
        shutil.copymode(src, dst)
    need(not [f for f in binary_with_prefix if is_elf(os.path.join(prefix, f))],
         f"ELF files embed the build prefix: {binary_with_prefix}")
    test = meta.get("test") or {}
    reqs = pip_specs(list(meta["requirements"].get("run") or []) + list(test.get("requires") or []))
    run([tpython, "-m", "pip", "install", "-q", *reqs])
    test_dir = os.path.join(work, "test_tmp")
    shutil.rmtree(test_dir, ignore_errors=True)
    os.makedirs(test_dir)
    for rel in test.get("source_files") or []:
        s, d = os.path.join(src_dir, rel), os.path.join(test_dir, rel)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        (shutil.copytree if os.path.isdir(s) else shutil.copy2)(s, d)
    shutil.copy2(os.path.join(RECIPE, "run_test.py"), test_dir)
    tenv = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "CONDA_PREFIX")}
    tenv.update(PREFIX=test_prefix, SP_DIR=tsp, PYTHON=tpython, SHLIB_EXT=".so", PKG_NAME=env["PKG_NAME"],
                PATH=f"{test_prefix}/bin:{tenv.get('PATH', '')}", PYTHONDONTWRITEBYTECODE="1")
    t_test = time.time()
    steps = [f"import {m}" for m in test.get("imports") or []]
    cmds = [[tpython, "-c", s] for s in steps] + [[tpython, "run_test.py"]]
    cmds += [["bash", "-eo", "pipefail", "-c", str(c)] for c in test.get("commands") or []]
    for cmd in cmds:
        label = cmd[-1] if cmd[0] == "bash" else " ".join(cmd[1:])
        r = subprocess.run(cmd, cwd=test_dir, env=tenv, capture_output=True, text=True)
        tail = (r.stdout + r.stderr).strip().splitlines()[-2:]
        log(f"test {'ok    ' if r.returncode == 0 else 'FAILED'} {label[:90]}" + (f"  | {tail[-1][:110]}" if tail else ""))
        if r.returncode != 0:
            errors.append(f"test command failed: {label}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
            print(r.stdout[-3000:], r.stderr[-3000:])
    # a C++ consumer finds the CMake package in the prefix, compiles against the header and runs
    consumer = os.path.join(work, "consumer")
    shutil.rmtree(consumer, ignore_errors=True)
    os.makedirs(consumer)
    with open(os.path.join(consumer, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.25)\nproject(consumer CXX)\n"
                f"find_package(w4a16_gemm {meta['package']['version']} REQUIRED)\n"
                "add_executable(consumer main.cpp)\ntarget_link_libraries(consumer PRIVATE w4a16_gemm::w4a16_gemm)\n")
    with open(os.path.join(consumer, "main.cpp"), "w") as f:
        f.write("#include <w4a16/w4a16.h>\n#include <cstdio>\n#include <cstring>\n"
                "int main() { std::printf(\"w4a16 %s, %d configs\\n\", w4a16_version(), w4a16_num_configs());\n"
                "  return std::strcmp(w4a16_version(), \"" + str(meta["package"]["version"]) + "\") != 0; }\n")
    cenv = dict(tenv, CUDAToolkit_ROOT=cuda_root)
    steps = [["cmake", "-S", consumer, "-B", os.path.join(consumer, "build"), f"-DCMAKE_PREFIX_PATH={test_prefix}"],
             ["cmake", "--build", os.path.join(consumer, "build")], [os.path.join(consumer, "build", "consumer")]]
    for cmd in steps:
        r = subprocess.run(cmd, env=cenv, capture_output=True, text=True)
        if r.returncode != 0:
            need(False, f"C++ consumer step {' '.join(cmd[:2])} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            break
    else:
        log(f"C++ consumer: find_package(w4a16_gemm) from the prefix, built and ran: {r.stdout.strip()}")
    # the loader finds every library without LD_LIBRARY_PATH, libcudart from the prefix (cuda-cudart)
    check = [os.path.join(test_prefix, f) for f in elfs]
    r = subprocess.run(["bash", os.path.join(HERE, "check_ldd.sh"), *check], capture_output=True, text=True,
                       env={**tenv, "W4A16_EXPECT_CUDART_DIR": os.path.join(test_prefix, "lib")})
    need(r.returncode == 0, "check_ldd failed on the test prefix:\n" + r.stdout + r.stderr)
    log(f"ldd: {len(check)} ELF files resolve in the test prefix, libcudart from $PREFIX/lib")
    log(f"tests took {time.time() - t_test:.0f} s; total {time.time() - t0:.0f} s")

    if errors:
        log(f"{len(errors)} problem(s); work folder kept: {work}")
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
