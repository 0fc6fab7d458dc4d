#!/usr/bin/env python3
"""Render recipe/meta.yaml the way conda-build does, for every variant of recipe/conda_build_config.yaml, and
check it (no conda, no network).

conda-build renders a recipe in two steps: Jinja2 with its context (compiler(), stdlib(), pin_compatible(),
pin_subpackage(), environ, the variant's keys, PKG_HASH, ...), then line selectors ("# [expr]") evaluated
with the variant, then YAML. This script does the same with stand-ins for the functions that need a solver
(their output has the same shape: "name >=lo,<hi"), then checks per variant:
  * valid YAML, known top-level sections; the package name and version agree with pyproject.toml;
  * sources: the repo itself (path: ..) and the CUTLASS wheel whose version pyproject.toml's build-system
    pins, with a sha256;
  * requirements: the C, C++ and CUDA compilers and stdlib, cmake/ninja no older than pyproject.toml and
    CMakeLists.txt ask for, host scikit-build-core/pybind11 as in build-system.requires, cuda-version of the
    variant and cuda-cudart-dev (cudart through run_exports), run numpy as pyproject's base dependencies;
  * test: imports w4a16_gemm, runs `w4a16_only_test --help`, pytest -m gpu only behind a GPU check;
  * about: summary and license as pyproject.toml;
and over all variants: the matrix is CUDA {12, 13} x Python {3.10 .. 3.13}, sm_90a is explicit.
With conda-souschef installed (PyPI), the raw recipe is also parsed by it (conda-forge's grayskull parser).

    python scripts/packaging/render_recipe.py                  # check all variants, print one line each
    python scripts/packaging/render_recipe.py --json VARIANT   # print one rendered variant, e.g. cuda=13.0,python=3.11
Exit 0 when every check passes, 1 otherwise (each failure printed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys

import jinja2
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "recipe")

_SELECTOR = re.compile(r"^(?P<body>.*?)\s*#\s*\[(?P<expr>[^\[\]]+)\]\s*$")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def load_pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def load_variants(path: str | None = None) -> list[dict]:
    """Cartesian product of conda_build_config.yaml's keys, honouring zip_keys (like conda-build)."""
    with open(path or os.path.join(RECIPE, "conda_build_config.yaml")) as f:
        config = yaml.safe_load(f)
    zip_keys = config.pop("zip_keys", [])
    groups, zipped = [], set()
    for keys in zip_keys:
        lengths = {len(config[k]) for k in keys}
        if len(lengths) != 1:
            raise ValueError(f"zip_keys {keys} have different lengths {lengths}")
        groups.append([dict(zip(keys, values)) for values in zip(*(config[k] for k in keys))])
        zipped |= set(keys)
    for key, values in config.items():
        if key not in zipped:
            groups.append([{key: v} for v in values])
    variants = []
    for combo in itertools.product(*groups):
        v = {}
        for part in combo:
            v.update({k: str(x) for k, x in part.items()})
        variants.append(v)
    return variants


def _next_version(version: str, pin: str) -> str:
    parts = [int(p) for p in re.findall(r"\d+", version)]
    n = pin.count("x")
    parts = (parts + [0] * n)[:n]
    parts[-1] += 1
    return ".".join(map(str, parts))


def _lower(version: str, pin: str) -> str:
    n = pin.count("x")
    return ".".join(re.findall(r"\d+", version)[:n])


def jinja_context(variant: dict, version_hint: str) -> dict:
    target = variant.get("target_platform", "linux-64")
    pyver = variant["python"].split(".*")[0].split()[0]
    py = pyver.replace(".", "")

    def compiler(lang: str) -> str:
        return f"{variant[lang + '_compiler']}_{target} {variant.get(lang + '_compiler_version', '')}".strip()

    def stdlib(lang: str) -> str:
        return f"{variant[lang + '_stdlib']}_{target} {variant.get(lang + '_stdlib_version', '')}".strip()

    def pin_compatible(name: str, min_pin: str = "x.x.x.x.x.x", max_pin: str = "x", **_: object) -> str:
        # conda-build takes the version resolved in host; cuda-version is the variant's CUDA version.
        known = {"cuda-version": variant.get("cuda_compiler_version", "0"), "python": pyver}
        ver = known.get(name, "1.0")
        return f"{name} >={_lower(ver, min_pin)},<{_next_version(ver, max_pin)}"

    def pin_subpackage(name: str, max_pin: str = "x.x", exact: bool = False, **_: object) -> str:
        if exact:
            return f"{name} {version_hint}"
        return f"{name} >={version_hint},<{_next_version(version_hint, max_pin)}"

    ctx = dict(variant)
    ctx.update(
        compiler=compiler,
        stdlib=stdlib,
        pin_compatible=pin_compatible,
        pin_subpackage=pin_subpackage,
        environ=dict(os.environ),
        os=os,
        target_platform=target,
        build_platform=target,
        PKG_HASH="0123abc",
        PKG_BUILDNUM="0",
        CONDA_PY=py,
        PY_VER=pyver,
        py=py,
        RECIPE_DIR=RECIPE,
        SRC_DIR=ROOT,
    )
    return ctx


def selector_namespace(variant: dict) -> dict:
    target = variant.get("target_platform", "linux-64")
    pyver = variant["python"].split(".*")[0].split()[0]
    ns = {k: v for k, v in variant.items()}
    ns.update(
        linux=target.startswith("linux"),
        linux64=target == "linux-64",
        x86_64=target.endswith("-64"),
        aarch64=target.endswith("aarch64"),
        osx=target.startswith("osx"),
        win=target.startswith("win"),
        unix=not target.startswith("win"),
        py=int(pyver.replace(".", "")),
        py3k=True,
        target_platform=target,
        build_platform=target,
        environ=dict(os.environ),
        os=os,
    )
    return ns


def apply_selectors(text: str, variant: dict) -> str:
    ns = selector_namespace(variant)
    out = []
    for line in text.splitlines():
        m = _SELECTOR.match(line)
        if m and not line.lstrip().startswith("#"):
            if eval(m.group("expr"), {"__builtins__": {}}, ns):  # noqa: S307 - conda-build does the same
                out.append(m.group("body"))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def render(variant: dict, version_hint: str = "0.0.0") -> dict:
    with open(os.path.join(RECIPE, "meta.yaml")) as f:
        text = f.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    rendered = env.from_string(text).render(**jinja_context(variant, version_hint))
    return yaml.safe_load(apply_selectors(rendered, variant))


def _specs(entries) -> dict[str, str]:
    """['numpy >=1.23', 'python'] -> {'numpy': '>=1.23', 'python': ''}"""
    out = {}
    for e in entries or []:
        parts = str(e).split(None, 1)
        out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def _pep508_to_conda(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def check_variant(meta: dict, variant: dict, pyproject: dict) -> list[str]:
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)

    project = pyproject["project"]
    need(set(meta) <= {"package", "source", "build", "requirements", "test", "about", "extra", "outputs"},
         f"unknown top-level sections {sorted(set(meta))}")
    need(meta["package"]["name"] == project["name"], f"package.name {meta['package']['name']} != {project['name']}")
    need(str(meta["package"]["version"]) == project["version"],
         f"package.version {meta['package']['version']} != pyproject {project['version']}")

    # sources
    sources = meta["source"] if isinstance(meta["source"], list) else [meta["source"]]
    need(any(s.get("path") == ".." for s in sources), "no `path: ..` source (the repository)")
    cutlass_pin = next(r for r in pyproject["build-system"]["requires"] if r.startswith("nvidia-cutlass"))
    cutlass_version = cutlass_pin.split("==")[1]
    urls = [s for s in sources if "url" in s]
    need(len(urls) == 1, f"expected one url source (CUTLASS), got {len(urls)}")
    for s in urls:
        need(f"nvidia_cutlass-{cutlass_version}-" in s["url"], f"CUTLASS source {s['url']} is not {cutlass_pin}")
        need(re.fullmatch(r"[0-9a-f]{64}", str(s.get("sha256", ""))) is not None, "CUTLASS source has no sha256")
        need(s.get("folder") == "cutlass", "CUTLASS source must unpack into folder `cutlass` (build.sh reads it)")

    # build
    build = meta["build"]
    need(isinstance(build.get("number"), int) and build["number"] >= 0, "build.number must be an int >= 0")
    need(not build.get("skip", False), f"variant {variant} is skipped on linux-64")
    need("W4A16_KERNELS" in (build.get("script_env") or []), "build.script_env should pass W4A16_KERNELS")

    # requirements
    req = meta["requirements"]
    bld, host, run = _specs(req.get("build")), _specs(req.get("host")), _specs(req.get("run"))
    target = variant.get("target_platform", "linux-64")
    for lang in ("c", "cxx", "cuda"):
        name = f"{variant[lang + '_compiler']}_{target}"
        need(name in bld, f"build requirements lack {{{{ compiler('{lang}') }}}} ({name})")
    need(bld.get(f"cuda-nvcc_{target}") == variant["cuda_compiler_version"], "CUDA compiler version != variant")
    need(f"{variant['c_stdlib']}_{target}" in bld, "build requirements lack {{ stdlib('c') }}")
    cmake_min = re.search(r"cmake_minimum_required\(VERSION ([\d.]+)",
                          _read(os.path.join(ROOT, "CMakeLists.txt"))).group(1)
    need(bld.get("cmake") == f">={cmake_min}", f"cmake should be >={cmake_min} (CMakeLists.txt), got {bld.get('cmake')}")
    need(pyproject["tool"]["scikit-build"]["cmake"]["version"] == f">={cmake_min}",
         "pyproject's cmake.version disagrees with CMakeLists.txt")
    need("ninja" in bld, "build requirements lack ninja")
    for r in pyproject["build-system"]["requires"]:
        name, spec = _pep508_to_conda(r)
        if name == "nvidia-cutlass":
            continue  # a source of the recipe, not a package
        need(name in host, f"host lacks {name} (pyproject build-system.requires)")
        need(host.get(name, "").replace(" ", "") == spec, f"host {name} {host.get(name)!r} != pyproject {spec!r}")
    need("python" in host and "pip" in host, "host lacks python/pip")
    need(host.get("cuda-version") == variant["cuda_compiler_version"],
         f"host cuda-version {host.get('cuda-version')} != variant {variant['cuda_compiler_version']}")
    need("cuda-cudart-dev" in host, "host lacks cuda-cudart-dev (libcudart through run_exports)")
    need("python" in run, "run lacks python")
    major = variant["cuda_compiler_version"].split(".")[0]
    need(run.get("cuda-version", "").startswith(f">={major},<{int(major) + 1}"),
         f"run cuda-version {run.get('cuda-version')!r} should pin CUDA {major}.x")
    base = pyproject["tool"]["scikit-build"]["metadata"]["dependencies"]["base"]
    for r in base:
        name, spec = _pep508_to_conda(r)
        need(run.get(name, "").replace(" ", "") == spec, f"run {name} {run.get(name)!r} != pyproject {spec!r}")
    need(not any(k.startswith("nvidia-cuda-runtime") for k in run), "conda run deps must not name PyPI's runtime wheel")

    # test
    test = meta.get("test") or {}
    need("w4a16_gemm" in (test.get("imports") or []), "test.imports lacks w4a16_gemm")
    raw_cmds = test.get("commands") or []
    need(all(isinstance(c, str) for c in raw_cmds),
         f"test.commands entries that YAML did not read as strings (quote them): {[c for c in raw_cmds if not isinstance(c, str)]}")
    cmds = [str(c) for c in raw_cmds]
    need("w4a16_only_test --help" in cmds, "test.commands lacks `w4a16_only_test --help`")
    gpu = [c for c in cmds if "-m gpu" in c]
    need(bool(gpu) and all("nvidia-smi" in c for c in gpu), "pytest -m gpu must run only behind a GPU check")
    for path in test.get("source_files") or []:
        need(os.path.exists(os.path.join(ROOT, path)), f"test.source_files entry {path} does not exist")
    need(os.path.isfile(os.path.join(RECIPE, "run_test.py")), "recipe/run_test.py missing")

    # about
    about = meta.get("about") or {}
    need(about.get("summary") == project["description"], "about.summary != pyproject description")
    need(about.get("license") == project["license"]["text"], "about.license != pyproject license")
    return errors


def check_global(variants: list[dict], metas: list[dict]) -> list[str]:
    errors = []
    matrix = {(v["cuda_compiler_version"].split(".")[0], v["python"].split(".*")[0]) for v in variants}
    want = {(c, p) for c in ("12", "13") for p in ("3.10", "3.11", "3.12", "3.13")}
    if matrix != want:
        errors.append(f"variant matrix {sorted(matrix)} != CUDA 12/13 x Python 3.10-3.13")
    strings = {m["build"].get("string") for m in metas}
    if len(strings) != len(metas):
        errors.append("build strings are not unique across variants")
    build_sh = _read(os.path.join(RECIPE, "build.sh"))
    for var in ("PREFIX", "SRC_DIR", "PYTHON", "CPU_COUNT", "CMAKE_ARGS"):
        if "${" + var not in build_sh:
            errors.append(f"recipe/build.sh does not use ${var}")
    if 'CUDAARCHS="90a-real"' not in build_sh:
        errors.append("recipe/build.sh must set CUDAARCHS=90a-real explicitly")
    cml = _read(os.path.join(ROOT, "CMakeLists.txt"))
    if cml.find("set(CMAKE_CUDA_ARCHITECTURES OFF)") < 0 or cml.find("set(CMAKE_CUDA_ARCHITECTURES OFF)") > cml.find("project("):
        errors.append("CMakeLists.txt must set CMAKE_CUDA_ARCHITECTURES OFF before project()")
    if "-gencode=arch=compute_90a,code=sm_90a" not in cml:
        errors.append("CMakeLists.txt no longer passes -gencode=arch=compute_90a,code=sm_90a")
    if not os.access(os.path.join(RECIPE, "build.sh"), os.X_OK):
        errors.append("recipe/build.sh is not executable")
    return errors


def check_souschef() -> list[str]:
    try:
        from souschef.recipe import Recipe
    except ImportError:
        print("render_recipe: conda-souschef not installed, raw-recipe parse skipped")
        return []
    recipe = Recipe(load_file=os.path.join(RECIPE, "meta.yaml"))
    errors = []
    sections = set(recipe.keys()) if hasattr(recipe, "keys") else set()
    for s in ("package", "source", "build", "requirements", "test", "about"):
        if s not in sections:
            errors.append(f"souschef: section {s} missing")
    cross = [x for x in recipe["requirements"]["build"] if x.selector]
    if any(x.selector != "build_platform != target_platform" for x in cross):
        errors.append("souschef: unexpected selectors in requirements/build")
    print(f"render_recipe: conda-souschef parsed the raw recipe ({len(sections)} sections)")
    return errors


def parse_variant_arg(text: str, variants: list[dict]) -> dict:
    want = dict(kv.split("=", 1) for kv in text.split(","))
    for v in variants:
        if v["cuda_compiler_version"].startswith(want.get("cuda", "")) and v["python"].startswith(want.get("python", "")):
            return v
    raise SystemExit(f"no variant matches {text}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="VARIANT", help="print the rendered recipe of one variant, e.g. cuda=13.0,python=3.11")
    args = ap.parse_args(argv)
    pyproject = load_pyproject()
    version = pyproject["project"]["version"]
    variants = load_variants()
    if args.json:
        v = parse_variant_arg(args.json, variants)
        print(json.dumps({"variant": v, "meta": render(v, version)}, indent=1, default=str))
        return 0
    errors: list[str] = []
    metas = []
    for v in variants:
        meta = render(v, version)
        metas.append(meta)
        errs = check_variant(meta, v, pyproject)
        label = f"cuda {v['cuda_compiler_version']} python {v['python'].split()[0]}"
        print(f"render_recipe: {label}: {meta['package']['name']} {meta['package']['version']} "
              f"build {meta['build'].get('string')} -> {'ok' if not errs else 'FAILED'}")
        errors += [f"{label}: {e}" for e in errs]
    errors += check_global(variants, metas)
    errors += check_souschef()
    for e in errors:
        print("render_recipe: ERROR:", e)
    print(f"render_recipe: {len(variants)} variants, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
