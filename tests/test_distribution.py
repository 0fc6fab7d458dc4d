"""Fast CPU checks of the distribution files: the conda recipe renders for every variant and agrees with
pyproject.toml, the wheel's runtime dependency matches the CUDA runtime its extension links, the Dockerfile and
the workflow are wired consistently. The slow checks (building the recipe and the wheel) are
scripts/ci_offline_checks.sh. Files that an installed test copy lacks (e.g. conda's test folder) skip."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGING = os.path.join(ROOT, "scripts", "packaging")


def read(rel: str) -> str:
    path = os.path.join(ROOT, rel)
    if not os.path.exists(path):
        pytest.skip(f"{rel} is not part of this copy of the tests")
    with open(path) as f:
        return f.read()


def import_packaging(name: str):
    if not os.path.isdir(PACKAGING):
        pytest.skip("scripts/packaging is not part of this copy of the tests")
    sys.path.insert(0, PACKAGING)
    try:
        return __import__(name)
    finally:
        sys.path.remove(PACKAGING)


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:
        tomllib = pytest.importorskip("tomli")
    read("pyproject.toml")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


# -- conda recipe ---------------------------------------------------------------------------------------------


def test_recipe_renders_for_every_variant_and_agrees_with_pyproject(capsys):
    pytest.importorskip("jinja2")
    pytest.importorskip("yaml")
    read("recipe/meta.yaml")
    render_recipe = import_packaging("render_recipe")
    assert render_recipe.main([]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "8 variants, 0 errors" in out


def test_recipe_variant_matrix_and_sm90a():
    pytest.importorskip("yaml")
    read("recipe/conda_build_config.yaml")
    render_recipe = import_packaging("render_recipe")
    variants = render_recipe.load_variants()
    assert {(v["cuda_compiler_version"], v["python"].split(".*")[0]) for v in variants} == {
        (c, p) for c in ("12.9", "13.0") for p in ("3.10", "3.11", "3.12", "3.13")
    }
    build_sh = read("recipe/build.sh")
    assert 'export CUDAARCHS="90a-real"' in build_sh
    assert "-DW4A16_CUDART=Shared" in build_sh and "W4A16_PYTHON_LIBS=prefix" in build_sh
    cml = read("CMakeLists.txt")
    assert cml.index("set(CMAKE_CUDA_ARCHITECTURES OFF)") < cml.index("project(")
    assert "-gencode=arch=compute_90a,code=sm_90a" in cml


def test_recipe_version_matches_everywhere():
    project = pyproject()["project"]
    meta = read("recipe/meta.yaml")
    assert re.search(r'{% set version = "([^"]+)" %}', meta).group(1) == project["version"]
    docker = read("docker/Dockerfile")
    assert re.search(r"^ARG VERSION=(\S+)$", docker, re.M).group(1) == project["version"]


# -- wheel metadata ---------------------------------------------------------------------------------------------


def test_runtime_dependency_follows_the_cuda_major(monkeypatch):
    meta = import_packaging("w4a16_dist_meta")
    assert meta.cuda_runtime_requirement(12, 9) == "nvidia-cuda-runtime-cu12>=12.9,<13"
    assert meta.cuda_runtime_requirement(13, 0) == "nvidia-cuda-runtime>=13.0,<14"
    with pytest.raises(RuntimeError, match="CUDA 11"):
        meta.cuda_runtime_requirement(11, 8)
    monkeypatch.delenv("W4A16_CUDA_RUNTIME_DEP", raising=False)
    monkeypatch.setenv("W4A16_CUDA_MAJOR", "12.8")
    assert meta.dynamic_metadata("dependencies", {"base": ["numpy>=1.23"]}) == [
        "numpy>=1.23", "nvidia-cuda-runtime-cu12>=12.8,<13"]
    assert os.environ["W4A16_WHEEL_CUDA_MAJOR"] == "12"
    monkeypatch.setenv("W4A16_CUDA_RUNTIME_DEP", "none")
    assert meta.dynamic_metadata("dependencies", {"base": ["numpy>=1.23"]}) == ["numpy>=1.23"]
    with pytest.raises(RuntimeError):
        meta.dynamic_metadata("version", {})


def test_pyproject_uses_the_provider_and_cmake_knows_the_wheel_folders():
    meta = import_packaging("w4a16_dist_meta")
    tool = pyproject()["tool"]["scikit-build"]
    assert "dependencies" in pyproject()["project"]["dynamic"]
    provider = tool["metadata"]["dependencies"]
    assert provider["provider"] == "w4a16_dist_meta"
    assert os.path.isfile(os.path.join(ROOT, provider["provider-path"], "w4a16_dist_meta.py"))
    cml = read("CMakeLists.txt")
    # CMake's RPATH and the provider's table name the same folders of the NVIDIA runtime wheels
    assert meta.RUNTIME_WHEELS[12][1] == "nvidia/cuda_runtime/lib" and '"nvidia/cuda_runtime/lib"' in cml
    assert meta.RUNTIME_WHEELS[13][1] == "nvidia/cu13/lib" and '"nvidia/cu${CUDAToolkit_VERSION_MAJOR}/lib"' in cml


def _core_needed() -> list[str]:
    import w4a16_gemm

    if shutil.which("readelf") is None:
        pytest.skip("readelf not available")
    out = subprocess.run(["readelf", "-d", w4a16_gemm._core.__file__], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\).*\[(.*)\]", out)


def test_installed_metadata_names_the_runtime_the_extension_links():
    cudart = [n for n in _core_needed() if n.startswith("libcudart.so.")]
    if not cudart:
        pytest.skip("this build links the CUDA runtime statically")
    major = int(cudart[0].rsplit(".", 1)[1])
    requires = importlib.metadata.requires("w4a16-gemm") or []
    runtime = [r for r in requires if r.startswith("nvidia-cuda-runtime")]
    if not runtime:
        pytest.skip("built without the runtime-wheel dependency (W4A16_CUDA_RUNTIME_DEP=none, e.g. conda)")
    name = {12: "nvidia-cuda-runtime-cu12", 13: "nvidia-cuda-runtime"}[major]
    assert re.match(rf"{re.escape(name)}\s*[<>=]", runtime[0]) and f"<{major + 1}" in runtime[0], runtime


def test_libcudart_is_found_without_ld_library_path():
    cudart = [n for n in _core_needed() if n.startswith("libcudart.so.")]
    if not cudart:
        pytest.skip("this build links the CUDA runtime statically")
    major = int(cudart[0].rsplit(".", 1)[1])
    dist = {12: "nvidia-cuda-runtime-cu12", 13: "nvidia-cuda-runtime"}[major]
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is not installed here")
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    code = ("import w4a16_gemm, os; print(os.path.dirname(os.path.dirname(w4a16_gemm.__file__)));"
            "print(sorted({p for p in open('/proc/self/maps').read().split() if 'libcudart.so' in p}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    site, loaded = r.stdout.splitlines()[:2]
    folder = {12: "nvidia/cuda_runtime/lib", 13: "nvidia/cu13/lib"}[major]
    assert os.path.join(site, folder) in loaded, (site, loaded)


# -- docker -------------------------------------------------------------------------------------------------------


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    import fnmatch

    ignored = False
    for p in patterns:
        neg = p.startswith("!")
        p = p.lstrip("!").rstrip("/")
        parts = rel.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for i in range(len(parts)))
        hit = hit or (p.startswith("**/") and any(fnmatch.fnmatch(x, p[3:]) for x in parts))
        if hit:
            ignored = not neg
    return ignored


def test_dockerfile_is_wired_consistently():
    text = read("docker/Dockerfile")
    ignore = [ln.strip() for ln in read(".dockerignore").splitlines() if ln.strip() and not ln.startswith("#")]
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M)
    assert stages == ["uv", "builder", "runtime"]
    for src in re.findall(r"^COPY --from=(\S+)", text, re.M):
        assert src in stages, f"COPY --from={src}: no such stage"
    first_from = text.index("\nFROM ")
    global_args = re.findall(r"^ARG (\w+)", text[:first_from], re.M)
    for arg in re.findall(r"^FROM .*?\$\{(\w+)\}", text, re.M):
        assert arg in global_args, f"FROM uses ${{{arg}}} without a global ARG"
    assert {"CUDA_VERSION", "PYTHON_VERSION"} <= set(global_args)
    runtime = text[text.index("AS runtime"):]
    assert re.search(r"^USER 10001:10001$", runtime, re.M), "runtime stage must run as a non-root numeric user"
    assert '\nENTRYPOINT ["/opt/w4a16/bin/w4a16_only_test"]' in runtime
    for label in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in runtime
    assert "check_ldd.sh" in runtime and "w4a16_only_test --help" in runtime
    assert "--mount=type=cache" in text and "ccache" in text
    # what the builder reads from the build context is not excluded by .dockerignore
    if not os.path.isdir(os.path.join(ROOT, "python")):
        pytest.skip("the sources are not part of this copy of the tests")
    for rel in ("pyproject.toml", "CMakeLists.txt", "scripts/packaging/w4a16_dist_meta.py",
                "scripts/packaging/check_ldd.sh", "python/w4a16_gemm/__init__.py", "kernels/generate.py",
                "csrc/include/w4a16/w4a16.h", "cmake/w4a16_gemmConfig.cmake.in", "README.md"):
        assert os.path.exists(os.path.join(ROOT, rel)), rel
        assert not _dockerignored(rel, ignore), f".dockerignore excludes {rel}, which the build needs"
    assert _dockerignored("build/cp311/x.o", ignore) and _dockerignored(".git/HEAD", ignore)


# -- workflows ------------------------------------------------------------------------------------------------------


def test_workflow_builds_once_tests_on_h100_and_releases_on_tags():
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load(read(".github/workflows/ci.yml"))
    labels = yaml.safe_load(read(".github/actionlint.yaml"))["self-hosted-runner"]["labels"]
    jobs = wf["jobs"]
    assert {"lint", "wheel", "conda", "image", "gpu", "release-pypi", "release-artifacts"} <= set(jobs)
    assert jobs["wheel"]["strategy"]["matrix"]["cuda"] == ["12.9", "13.0"]
    assert jobs["conda"]["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12", "3.13"]
    gpu = jobs["gpu"]
    assert set(gpu["needs"]) == {"wheel", "conda", "image"}
    assert "self-hosted" in gpu["runs-on"] and set(gpu["runs-on"]) - {"self-hosted", "linux", "x64"} <= set(labels)
    assert "h100" in gpu["runs-on"]
    steps = " ".join(str(s.get("run", "")) for s in gpu["steps"])
    assert "w4a16_only_test" in steps and "-m gpu" in steps
    for name in ("release-pypi", "release-artifacts"):
        assert jobs[name]["if"] == "startsWith(github.ref, 'refs/tags/v')" and jobs[name]["needs"] == ["gpu"]
    assert jobs["release-pypi"]["permissions"] == {"id-token": "write"}
    assert any("pypa/gh-action-pypi-publish" in str(s.get("uses")) for s in jobs["release-pypi"]["steps"])
    assert f"{wf['env']['PYPI_CUDA_MAJOR']}.0" in jobs["wheel"]["strategy"]["matrix"]["cuda"]
