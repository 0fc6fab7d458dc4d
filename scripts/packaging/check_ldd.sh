#!/usr/bin/env bash
# Checks that the dynamic loader resolves every library the given ELF files need, except the driver's libcuda
# (present only on a machine with the NVIDIA driver), and prints where libcudart comes from.
#   scripts/packaging/check_ldd.sh FILE...
# W4A16_EXPECT_CUDART_DIR=DIR: libcudart must resolve to a file inside DIR (e.g. the runtime wheel's lib folder).
# Used by docker/Dockerfile (runtime stage self-check), recipe emulation and the wheel check.
set -euo pipefail
status=0
for f in "$@"; do
  if ! out=$(ldd "$f" 2>&1); then
    echo "check_ldd: ldd failed on $f: $out"
    status=1
    continue
  fi
  missing=$(grep "not found" <<<"$out" | grep -v -E '^\s*libcuda\.so' || true)
  if [ -n "$missing" ]; then
    echo "check_ldd: $f: unresolved:"
    echo "$missing"
    status=1
  fi
  cudart=$(awk '/libcudart\.so/ {print $3}' <<<"$out")
  if [ -n "${W4A16_EXPECT_CUDART_DIR:-}" ] && [ -n "$cudart" ]; then
    want=$(readlink -f "$W4A16_EXPECT_CUDART_DIR")
    case "$(readlink -f "$cudart")" in
      "$want"/*) ;;
      *) echo "check_ldd: $f: libcudart from $cudart, expected under $want"; status=1 ;;
    esac
  fi
  echo "check_ldd: $f: libcudart ${cudart:-not needed}"
done
exit "$status"
