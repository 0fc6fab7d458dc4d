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
  gfix-mid)
    # (session 17) the split-K fix-up through the workspace for the warpgroup-MMA kernels: `check` of the library,
    # then `mid` with every split's global-fix-up twin next to its cluster grid (MID_GFIX=1), M = 16-128.
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    timeout 240 "$B/dt_lib" check >"$OUT/check.txt" 2>&1
    echo "check: exit $? | $(tail -1 "$OUT/check.txt")"
    MID_GFIX=1 MID_MS=${MID_MS:-16,32,64,128} timeout "${MID_TIMEOUT:-420}" "$B/dt_lib" mid | tee "$OUT/mid_gfix.txt" \
      | grep -E "BEST|failed"
    ;;
  s17-build)
    # (session 17) the library (warpgroup-MMA global fix-up rule) against the same rule without the m 9-16
    # extension to the long-K layers (f821329's source, which had a switch for it), and against the kernel source
    # before the rule (REV, default 57f96d7)
    git show "${REV:-57f96d7}:csrc/decode_gemm.cu" > /tmp/s17_old.cu || exit 1
    git show f821329:csrc/decode_gemm.cu \
      | sed 's/constexpr bool kWgFixupAt16 = true;/constexpr bool kWgFixupAt16 = false;/' > /tmp/s17_nowg16.cu
    grep -q "kWgFixupAt16 = false" /tmp/s17_nowg16.cu || { echo "kWgFixupAt16 not found: update run.sh"; exit 1; }
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/s17_nowg16.cu|nowg16|\n/tmp/s17_old.cu|old|\n' > "$B/v_s17.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_s17.txt"
    ;;
  s17-ab)
    # check of the library, then M 1-16 (`bench`) and the auto configs at M = 32 / 64 (`mid` with no sweep), two
    # rounds of bench and one of mid (MID_ROUNDS), variants interleaved
    OUT=${OUT:-$B/exp}
    CHECKS=${AB_CHECKS-lib} ROUNDS=${AB_ROUNDS:-2} OUT="$OUT/bench" bash scripts/decode_dev/ab.sh run "$B/v_s17.txt"
    AB_MODE=mid MID_SPLITS=99 MID_MS=32,64 ROUNDS=${MID_ROUNDS:-1} OUT="$OUT/mid" bash scripts/decode_dev/ab.sh run "$B/v_s17.txt"
    ;;
  s17-all)
    # one device call: s17-ab with one bench round, then the call of record (scripts/record_device_check.sh) on the
    # wheel in .devdist built from the same source as dt_lib
    AB_CHECKS='' AB_ROUNDS=${AB_ROUNDS:-1} bash "$0" s17-ab   # (record_device_check runs decode_test check)
    bash scripts/record_device_check.sh 2>&1 | tail -60
    ;;
  s19-build)
    # (session 19) the workspace fix-up past a cluster's 8 CTAs: the library against its source before (REV). The
    # first round also built a copy whose mma.sync fix-up grids took splits up to 16 on every tile (dropped: 70B
    # qkv at m = 1 / 4 16.0 / 16.9 us vs 15.5 / 15.9; benchmarks/NOTES.md, session 19)
    git show "${REV:-4428740}:csrc/decode_gemm.cu" > /tmp/dg_head.cu || exit 1
    printf 'csrc/decode_gemm.cu|lib|\n/tmp/dg_head.cu|head|\n' > "$B/v_s19.txt"
    bash scripts/decode_dev/ab.sh build "$B/v_s19.txt"
    ;;
  s19-run)
    # check (with configs of splits 9-16 through the workspace), bench M 1-16 (two rounds), then `narrow` through
    # the workspace (NARROW_GFIX=1): the long-K layers at m = 1 / 4 over tiles x warps x splits 8-16 (S19_WIDE=1),
    # and the 4-warp 16-block tiles on 4096x14336 at m = 16
    OUT=${OUT:-$B/exp}
    mkdir -p "$OUT"
    timeout 240 "$B/dt_lib" check >"$OUT/check_lib.txt" 2>&1
    echo "check lib: exit $? | $(tail -1 "$OUT/check_lib.txt")"
    ROUNDS=2 OUT="$OUT/bench" bash scripts/decode_dev/ab.sh run "$B/v_s19.txt"
    if [[ -n ${S19_WIDE:-} ]]; then
      NARROW_GFIX=1 NARROW_KS=8192,14336,28672 NARROW_MS=1,4 NARROW_WARPS=8,4 NARROW_TILES=32,16,8 \
        NARROW_SPLITS=8,10,12,13,14,16 NARROW_STAGES=0 timeout "${NARROW_TIMEOUT:-200}" "$B/dt_lib" narrow \
        >"$OUT/narrow_gfix.txt" 2>&1
      echo "narrow: exit $?"; grep BEST "$OUT/narrow_gfix.txt"
    fi
    NARROW_GFIX=1 NARROW_KS=14336 NARROW_MS=16 NARROW_WARPS=4 NARROW_TILES=16 NARROW_SPLITS=8,10,12,13,14,16 \
      NARROW_STAGES=0 timeout 60 "$B/dt_lib" narrow >"$OUT/narrow_gfix_m16.txt" 2>&1
    echo "narrow m16: exit $?"; cat "$OUT/narrow_gfix_m16.txt"
    ;;
  s19-k4)
    # (session 19) the workspace fix-up on K = 4096 at m <= 8: the library against k4a (the fix-up grids of the
    # long-K rule on K >= 4096 too) and k4b (the same where they have >= 2x the cluster grid's CTAs); bench M 1-16,
    # two rounds. `s19-k4 build` on the CPU machine, `s19-k4 run` on the device. The variants are edits of the
    # source before the rule (REV, default 143badc; k4b is what 8624c95 adopted).
    if [[ ${2:-run} == build ]]; then
      git show "${REV:-143badc}:csrc/decode_gemm.cu" > /tmp/s19_k4base.cu || exit 1
      python3 - <<'PY' || exit 1
s = open("/tmp/s19_k4base.cu").read()
old = "  if (nch >= 128 && (a.m <= 8 || nch >= 256)) {\n"
assert s.count(old) == 1, "the mma.sync fix-up block changed: update run.sh"
a = s.replace(old, "  if (nch >= (a.m <= 8 ? 64 : 128) && (a.m <= 8 || nch >= 256)) {\n")
open("/tmp/s19_k4a.cu", "w").write(a)
cond = "        if (ctas > best_ctas && ctas <= 2ll * sm_count && !one_wave(tiles, s, true)) {\n"
assert a.count(cond) == 1
b = a.replace("  if (nch >= (a.m <= 8 ? 64 : 128)", "  const long long cluster_ctas = best_ctas;\n  if (nch >= (a.m <= 8 ? 64 : 128)")
b = b.replace(cond, "        if (ctas > best_ctas && ctas <= 2ll * sm_count && !one_wave(tiles, s, true) &&\n"
                    "            (nch >= 128 || ctas >= 2 * cluster_ctas)) {\n")
open("/tmp/s19_k4b.cu", "w").write(b)
PY
      printf '/tmp/s19_k4base.cu|lib|\n/tmp/s19_k4a.cu|k4a|\n/tmp/s19_k4b.cu|k4b|\n' > "$B/v_k4.txt"
      bash scripts/decode_dev/ab.sh build "$B/v_k4.txt"
    else
      ROUNDS=2 OUT="${OUT:-$B/exp}/k4" bash scripts/decode_dev/ab.sh run "$B/v_k4.txt"
    fi
    ;;
  s20-bound)
    # (session 20) what the memory pipeline alone costs: the library against memory_only.patch with the consumers'
    # math removed (nomath: each stage waited for and released, outputs zero) and with the epilogue removed too
    # (pipe: CTAs exit after the K loop). Not a change: the bound under the benchmark's protocol (PDL chains of cold
    # weights) for the M 1-16 decode path. bench M 1-16 two rounds; `mid` auto configs at M = 32 / 64 one round.
    if [[ ${2:-run} == build ]]; then
      cp csrc/decode_gemm.cu /tmp/s20_mem.cu && patch -s /tmp/s20_mem.cu "$E/memory_only.patch" || exit 1
      printf 'csrc/decode_gemm.cu|lib|\n/tmp/s20_mem.cu|nomath|-DEXP_NO_MATH\n/tmp/s20_mem.cu|pipe|-DEXP_NO_MATH -DEXP_NO_EPILOGUE\n' \
        > "$B/v_s20.txt"
      bash scripts/decode_dev/ab.sh build "$B/v_s20.txt"
    else
      ROUNDS=2 OUT="${OUT:-$B/exp}/bound" bash scripts/decode_dev/ab.sh run "$B/v_s20.txt"
      AB_MODE=mid MID_SPLITS=99 MID_MS=32,64 ROUNDS=1 OUT="${OUT:-$B/exp}/bound_mid" \
        bash scripts/decode_dev/ab.sh run "$B/v_s20.txt"
    fi
    ;;
  s23-stage-warps)
    # (session 23, dropped) stage_warps.patch: tiles of 1-2 n-blocks whose 8 consumer warps take the CTA's stages
    # in turn (Shape::kStageWarps), the whole of K in one CTA, no split-K fix-up. `check` of those configs, then
    # `narrow` at M = 1 / 4 / 16 on the K = 4096 / 8192 layers (tiles 1 and 2 x splits 1-4 against the auto config
    # of the same binary). README.md next to this script has the outcome.
    if [[ ${2:-run} == build ]]; then
      cp csrc/decode_gemm.cu /tmp/s23_sw.cu && patch -s /tmp/s23_sw.cu "$E/stage_warps.patch" || exit 1
      printf '/tmp/s23_sw.cu|sw|-DEXP_STAGE_WARPS\n' > "$B/v_s23.txt"
      bash scripts/decode_dev/ab.sh build "$B/v_s23.txt"
    else
      O=${OUT:-$B/exp}/s23
      mkdir -p "$O"
      CHECK_CONFIGS=8/1/1/0/2,8/2/1/0/2,8/1/3/0/2,8/2/2/1/2,8/1/1/2/0,8/2/1/3/1,8/1/5/0/2,8/2/8/0/2 \
        timeout 200 "$B/dt_sw" check > "$O/check_sw.txt" 2>&1
      echo "check sw: exit $?, $(tail -1 "$O/check_sw.txt")"
      NARROW_KS=4096,8192 NARROW_MS=1,4,16 NARROW_TILES=1,2 NARROW_SPLITS=1,2,3,4 NARROW_STAGES=0 \
        timeout 300 "$B/dt_sw" narrow | tee "$O/narrow_sw.txt" | grep BEST
    fi
    ;;
  *) echo "usage: $0 build|run|racecheck|gfix-mid|s17-build|s17-ab|s17-all|s19-build|s19-run|s19-k4 [build]|s20-bound [build]|s23-stage-warps [build]"; exit 2 ;;
esac
