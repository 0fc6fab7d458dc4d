# Sourced by the scripts/ that run on the GPU machine: installs carried wheels (the machine reaches no
# package index) and builds + installs w4a16-gemm from this checkout (or installs W4A16_WHEEL=<file> instead).
# Sets OUT (logs) and W4A16_PY.
# Carry the wheels with:  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#   --implementation cp --platform manylinux2014_x86_64 -d .whl nvidia-cutlass==4.2.0.0
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
W4A16_PY=${W4A16_PY:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$W4A16_PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "device_setup: installing carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
if [ -n "${W4A16_WHEEL:-}" ]; then  # a prebuilt wheel (e.g. the CPU machine's): install it, build nothing
  "$W4A16_PY" -m pip install -q --no-index --no-deps --force-reinstall "$W4A16_WHEEL" \
    || { echo "device_setup: installing $W4A16_WHEEL failed"; exit 1; }
  echo "== using the wheel $(basename "$W4A16_WHEEL"), no build"
  return 0 2>/dev/null || exit 0
fi
# A machine kept warm between calls keeps what the last call installed: skip the build when the sources
# are the same (hash of every tracked-type source file here).
tree_hash=$(find . -path ./.whl -prune -o -path ./.devsnap -prune -o -type f \( -name '*.cu' -o -name '*.cuh' \
  -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.py' -o -name 'CMakeLists.txt' -o -name '*.toml' \) \
  -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-16)
if [ "$(cat /tmp/w4a16_built_tree 2>/dev/null)" = "$tree_hash" ]; then
  echo "== build: reusing the installation of the same sources ($tree_hash)"
else
  echo "== build (pip install .) on $(nproc) cores"
  build_start=$(date +%s)
  if ! "$W4A16_PY" -m pip install --no-build-isolation --no-deps --no-index --no-cache-dir -v . >"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "device_setup: build failed (full log in build.log)"
    exit 1
  fi
  echo "build: $(( $(date +%s) - build_start )) s"
  echo "$tree_hash" >/tmp/w4a16_built_tree
fi
