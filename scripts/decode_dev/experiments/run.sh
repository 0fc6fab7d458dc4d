#!/usr/bin/env bash
# This folder's current experiments in one device call (session 10, 2026-12-02; earlier sessions' steps are in
# git history and in README.md next to this script).
#   bash scripts/decode_dev/experiments/run.sh build   (CPU machine: patched copies -> build/decode_dev/dt_*; carry
#                                                        build/decode_dev to the device)
#   bash scripts/decode_dev/experiments/run.sh run     (GPU: logs under $OUT, default build/decode_dev/exp)
# run: the per-CTA timeline of the benchmark's chains (`decode_test timeline`, with x copied after and before the
# wait; raw records as CSV under $OUT/timeline), then `check` and `bench` (M 1-16, two rounds) of the one-barrier
# push epilogue and of the second chunk's loads hoisted, each against the library.
# racecheck (GPU): check-small under racecheck on one-slot rings, per config, on the library (every consumer lane
# releases a one-slot ring since session 11; the elected arrive drew racecheck reports there: README.md).
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
B=build/decode_dev
E=scripts/decode_dev/experiments
mkdir -p "$B"
case ${1:?build or run} in
  build)
    cp csrc/decode_gemm.cu /tmp/exp_tl.cu && patch -s /tmp/exp_tl.cu "$E/timeline.patch" || exit 1
    # x before the wait on top of the timeline: the same edit as x_before_wait.patch, after the timeline's stamp
    python3 - <<'PY' || exit 1
s = open("/tmp/exp_tl.cu").read()
old = ('    if (p.pdl) asm volatile("griddepcontrol.wait;\\n" ::: "memory");\n#ifdef EXP_TIMELINE\n'
       '    if (lane == 0) tl_wait = gtimer();\n#endif\n    for (int i = 0; i < pre; ++i) issue_xs(i, i);\n')
new = ('#ifdef EXP_X_BEFORE_WAIT\n    for (int i = 0; i < pre; ++i) issue_xs(i, i);\n#endif\n'
       '    if (p.pdl) asm volatile("griddepcontrol.wait;\\n" ::: "memory");\n#ifdef EXP_TIMELINE\n'
       '    if (lane == 0) tl_wait = gtimer();\n#endif\n#ifndef EXP_X_BEFORE_WAIT\n'
       '    for (int i = 0; i < pre; ++i) issue_xs(i, i);\n#endif\n')
assert old in s, "timeline.patch changed: update run.sh"
open("/tmp/exp_tl.cu", "w").write(s.replace(old, new, 1))
PY
    cp csrc/decode_gemm.cu /tmp/exp_push2.cu && patch -s /tmp/exp_push2.cu "$E/push_one_barrier.patch" || exit 1
    cp csrc/decode_gemm.cu /tmp/exp_ilp.cu && patch -s /tmp/exp_ilp.cu "$E/second_chunk_loads_first.patch" || exit 1
    printf '/tmp/exp_tl.cu|tl|-DEXP_TIMELINE\n/tmp/exp_tl.cu|tlx|-DEXP_TIMELINE -DEXP_X_BEFORE_WAIT\n' > "$B/v_tl.txt"
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/exp_push2.cu|push2|-DEXP_PUSH2\n/tmp/exp_ilp.cu|ilp|-DEXP_ILP\n' > "$B/v_ab.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_tl.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_ab.txt"
    ;;
  run)
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT/timeline/x"
    TL_DUMP="$OUT/timeline" TL_SHAPES=1,0,3,6 TL_MS=1,16 timeout 150 "$B/dt_tl" timeline | tee "$OUT/timeline.txt"
    TL_DUMP="$OUT/timeline/x" TL_SHAPES=1,0 TL_MS=1 timeout 60 "$B/dt_tlx" timeline | tee "$OUT/timeline_x.txt"
    CHECKS="push2 ilp" ROUNDS=2 OUT="$OUT/ab" bash scripts/decode_dev/ab.sh run "$B/v_ab.txt"
    ;;
  racecheck)
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    for v in lib; do
      for c in 8/16/3/1/2 4/16/3/1/2 8/32/3/1/2 8/8/3/1/2 8/16/3/2/2 4/16/3/0/2; do
        CHECK_CONFIGS=$c timeout 120 "$SAN" --tool racecheck --racecheck-report all --print-limit 5 \
          "$B/dt_$v" check-small >"$OUT/racecheck_${v}_${c//\//-}.txt" 2>&1
        echo "$v $c: exit $? | $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck_${v}_${c//\//-}.txt" | tail -1)"
      done
    done
    ;;
  *) echo "usage: $0 build|run|racecheck"; exit 2 ;;
esac
