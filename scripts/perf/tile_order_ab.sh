#!/usr/bin/env bash
# A/B of the CUTLASS kernels' tile order (raster order x swizzle, csrc/heuristic.cpp select_tile_order) through the
# environment overrides, on the installed package (GPU machine):
#   bash scripts/perf/tile_order_ab.sh [WHEEL]        (installs WHEEL first, no deps, no index)
# VARIANTS: space-separated "raster,swizzle" pairs (raster auto|n|m; default below; "-" = the library's default);
# M: token counts (default the large-M bucket); logs and one bench.csv per variant under $OUT/<variant>/, then a
# table of us per call per variant with cuBLAS fp16 of the same pass.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build/tile_order_ab}
mkdir -p "$OUT"
if [ -n "${1:-}" ]; then python3 -m pip install -q --no-index --no-deps --force-reinstall "$1" 2>&1 | tail -1; fi
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
VARIANTS=${VARIANTS:-"- auto,8 n,8 m,8 auto,4 -"}
i=0
for v in $VARIANTS; do
  i=$((i + 1))
  name="$i-${v/,/_}"
  if [ "$v" = "-" ]; then r=""; s=""; else r=${v%,*}; s=${v#*,}; fi
  W4A16_TILE_RASTER=$r W4A16_TILE_SWIZZLE=$s timeout 400 python3 -m w4a16_gemm bench --m "${M:-512,4096,8192}" \
    --impls w4a16,cublas --no-latency --no-progress --out "$OUT/$name" > "$OUT/$name.log" 2>&1 \
    || echo "variant $v failed: $(tail -2 "$OUT/$name.log")"
done
python3 - "$OUT" <<'PY'
import csv, glob, math, os, sys
out = sys.argv[1]
runs = sorted(glob.glob(os.path.join(out, "*", "bench.csv")), key=lambda p: int(os.path.basename(os.path.dirname(p)).split("-")[0]))
data = {}
for p in runs:
    name = os.path.basename(os.path.dirname(p))
    for r in csv.DictReader(open(p)):
        key = (int(r["M"]), int(r["N"]), int(r["K"]))
        data.setdefault(key, {})[name] = (float(r["w4a16_us"]), float(r["cublas_us"]))
names = [os.path.basename(os.path.dirname(p)) for p in runs]
print("M N K | " + " | ".join(f"{n} us (x cuBLAS)" for n in names))
logs = {n: [] for n in names}
for key in sorted(data):
    cells = []
    for n in names:
        if n in data[key]:
            w, c = data[key][n]
            logs[n].append(math.log(c / w))
            cells.append(f"{w:9.1f} ({c / w:5.3f})")
        else:
            cells.append("-")
    print(f"{key[0]} {key[1]} {key[2]} | " + " | ".join(cells))
print("geomean x cuBLAS | " + " | ".join(f"{math.exp(sum(v) / len(v)):.3f} (min {math.exp(min(v)):.3f})" if v else "-" for v in logs.values()))
PY
