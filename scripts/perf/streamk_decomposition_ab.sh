#!/usr/bin/env bash
# A/B of how the stream-K kernels divide their work (csrc/heuristic.cpp select_streamk_decomposition) through the
# environment override, on the installed package (GPU machine):
#   bash scripts/perf/streamk_decomposition_ab.sh [WHEEL]      (installs WHEEL first, no deps, no index)
# VARIANTS: space-separated values of W4A16_STREAMK_DECOMPOSITION ("-" = the library's default), each optionally
# with its own config globs as value=globs (default CONFIGS: the bench's --configs; the data-parallel kernels
# are unaffected by the variable, so their columns in two passes measure the noise); M: token counts. Logs and
# one bench.csv per variant under $OUT/<variant>/, then a table of us per call, per config and variant, with
# cuBLAS fp16 of the same pass.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build/streamk_ab}
mkdir -p "$OUT"
if [ -n "${1:-}" ]; then python3 -m pip install -q --no-index --no-deps --force-reinstall "$1" 2>&1 | tail -1; fi
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
VARIANTS=${VARIANTS:-"streamk=all heuristic=*streamk*_s"}
CONFIGS=${CONFIGS:-all}
i=0
for v in $VARIANTS; do
  i=$((i + 1))
  configs=$CONFIGS
  if [[ $v == *=* ]]; then configs=${v#*=}; v=${v%%=*}; fi
  name="$i-$v"
  [ "$v" = "-" ] && v=""
  W4A16_STREAMK_DECOMPOSITION=$v timeout "${PASS_TIMEOUT:-300}" python3 -m w4a16_gemm bench \
    --m "${M:-256,512,1024,4096,8192}" --impls w4a16,cublas --configs "$configs" --no-latency --no-progress \
    --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || echo "variant ${v:--} failed: $(tail -2 "$OUT/$name.log")"
done
python3 - "$OUT" <<'PY'
import csv, glob, os, sys
out = sys.argv[1]
runs = sorted(glob.glob(os.path.join(out, "*", "bench.csv")), key=lambda p: int(os.path.basename(os.path.dirname(p)).split("-")[0]))
names = [os.path.basename(os.path.dirname(p)) for p in runs]
data, configs = {}, set()
for n, p in zip(names, runs):
    for r in csv.DictReader(open(p)):
        key = (int(r["M"]), int(r["N"]), int(r["K"]))
        for col, val in r.items():
            if col.startswith("cfg:") and col.endswith("_us") and val:
                cfg = col[4:-3].replace("w4a16_sm90_", "")
                configs.add(cfg)
                data.setdefault(key, {})[(n, cfg)] = float(val)
        if r.get("cublas_us"):
            data.setdefault(key, {})[(n, "cublas")] = float(r["cublas_us"])
configs = sorted(configs) + ["cublas"]
print("us per call; columns: config @ variant")
print("M N K | " + " | ".join(f"{c}@{n.split('-', 1)[1]}" for c in configs for n in names))
for key in sorted(data):
    cells = [f"{data[key][(n, c)]:.1f}" if (n, c) in data[key] else "-" for c in configs for n in names]
    print(f"{key[0]} {key[1]} {key[2]} | " + " | ".join(cells))
PY
