"""What a call launches (describe_launch, w4a16_describe_launch): the decode kernel's plan per problem is the
measured rule of csrc/decode_gemm.cu (decode_select_config), pinned here on an H200-like GPU of 132 SMs; the
benchmark's CSV carries the same line per point (w4a16_launch). No GPU needed."""

import math
import re

import pytest

import w4a16_gemm as w4

DECODE = "w4a16_sm90_decode_m256_s"
NAMES = {c["name"] for c in w4.list_configs()}
PLAN = re.compile(
    r"^(?P<name>\S+): decode kernel \((?P<kernel>mma\.sync|warpgroup MMA)\), (?P<warps>\d+) consumer warps, "
    r"(?P<tiles>\d+) tiles? of (?P<features>\d+) features x (?P<tokens>\d+) tokens, "
    r"(?:K split (?P<split>\d+) ways|K not split): (?P<ctas>\d+) CTAs?"
    r"(?:; partials summed in rank order through (?P<reduction>the cluster's shared memory|the workspace by each "
    r"tile's last CTA))?$")


def decode_plan(m, n, k, **kw):
    if DECODE not in NAMES:
        pytest.skip(f"{DECODE} is not in this (subset) build")
    text = w4.describe_launch(m, n, k, config=DECODE, **kw)
    match = PLAN.match(text)
    assert match, text
    p = match.groupdict()
    return {
        "kernel": p["kernel"], "warps": int(p["warps"]), "tiles": int(p["tiles"]), "features": int(p["features"]),
        "tokens": int(p["tokens"]), "split": int(p["split"] or 1), "ctas": int(p["ctas"]),
        "reduction": {None: None, "the cluster's shared memory": "cluster"}.get(p["reduction"], "workspace"),
    }


# (m, n, k) -> kernel, consumer warps, features x tokens per tile, K split, reduction. Each is a measured choice
# (benchmarks/NOTES.md, H200): sessions 4-8 (mma.sync tiles and splits at m <= 16; warpgroup-MMA tiles above),
# 12 (4-warp CTAs on long K), 15 (the workspace fix-up where clusters stop long-K grids at m <= 8), 17 (the
# same for the warpgroup-MMA kernels, and m 9-16 on long-K 70B layers) and 19 (4-warp 16-block tiles split past a
# cluster's 8 through the workspace where 8-block tiles were left; on K = 4096 the workspace fix-up where it doubles
# the cluster grid).
PINNED = [
    ((1, 4096, 4096), ("mma.sync", 8, 128, 8, 8, "workspace")),
    ((1, 6144, 4096), ("mma.sync", 8, 256, 8, 8, "cluster")),
    ((4, 6144, 4096), ("mma.sync", 8, 256, 8, 8, "cluster")),
    ((1, 57344, 8192), ("mma.sync", 8, 512, 8, 2, "cluster")),
    ((16, 28672, 4096), ("mma.sync", 8, 512, 16, 4, "cluster")),
    ((1, 4096, 14336), ("mma.sync", 4, 256, 8, 13, "workspace")),
    ((8, 4096, 14336), ("mma.sync", 4, 256, 8, 13, "workspace")),
    ((1, 8192, 8192), ("mma.sync", 4, 256, 8, 8, "workspace")),
    ((4, 10240, 8192), ("mma.sync", 4, 256, 8, 6, "workspace")),
    ((1, 8192, 28672), ("mma.sync", 4, 256, 8, 8, "workspace")),
    ((16, 6144, 4096), ("warpgroup MMA", 8, 128, 16, 4, "cluster")),
    ((16, 4096, 4096), ("warpgroup MMA", 8, 128, 16, 8, "workspace")),
    ((16, 10240, 8192), ("warpgroup MMA", 8, 256, 16, 6, "workspace")),
    ((16, 8192, 28672), ("warpgroup MMA", 8, 256, 16, 8, "workspace")),
    ((32, 4096, 4096), ("warpgroup MMA", 8, 128, 32, 6, "cluster")),
    ((32, 57344, 8192), ("warpgroup MMA", 8, 256, 32, 1, None)),
    ((32, 28672, 4096), ("warpgroup MMA", 8, 256, 32, 2, "cluster")),
    ((64, 4096, 4096), ("warpgroup MMA", 8, 128, 64, 3, "cluster")),
    ((64, 10240, 8192), ("warpgroup MMA", 8, 128, 64, 3, "workspace")),
    ((64, 8192, 28672), ("warpgroup MMA", 8, 128, 64, 4, "workspace")),
    ((128, 8192, 8192), ("warpgroup MMA", 8, 128, 128, 2, "cluster")),
    ((256, 8192, 8192), ("warpgroup MMA", 8, 128, 128, 1, None)),
]


@pytest.mark.parametrize("mnk,expected", PINNED, ids=[f"{m}x{n}x{k}" for (m, n, k), _ in PINNED])
def test_decode_plan_is_the_measured_rule(mnk, expected):
    p = decode_plan(*mnk)
    assert (p["kernel"], p["warps"], p["features"], p["tokens"], p["split"], p["reduction"]) == expected


SHAPES = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (10240, 8192), (8192, 8192), (57344, 8192),
          (8192, 28672), (1024, 4096), (128256, 8192), (4104, 4096), (4096, 256)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 5, 8, 9, 16, 17, 32, 48, 64, 100, 128, 129, 256])
def test_decode_plan_is_consistent(m, n, k):
    p = decode_plan(m, n, k)
    tokens_max = 8 if m <= 8 else 16 if m <= 16 else 128
    assert p["tokens"] <= tokens_max and (p["tokens"] >= m or p["tokens"] == 128)
    assert p["kernel"] == ("warpgroup MMA" if m > 16 else p["kernel"])
    assert p["tiles"] == math.ceil(n / p["features"]) * math.ceil(m / p["tokens"])
    assert p["ctas"] == p["tiles"] * p["split"]
    # Splits past a cluster's 8 only through the workspace, in the 4-warp mma.sync kernels, within 1.6 x SMs.
    wide = p["reduction"] == "workspace" and p["kernel"] == "mma.sync" and p["warps"] == 4
    assert 1 <= p["split"] <= min(16 if wide else 8, k // 64)
    if p["split"] > 8:
        assert p["ctas"] <= 8 * 132 // 5
    assert (p["reduction"] is None) == (p["split"] == 1)
    # A grid of one wave: clusters two per SM at most, the workspace fix-up within 2 x SMs.
    if m <= 64 and p["split"] > 1:
        assert p["ctas"] <= 2 * 132


def test_one_tile_reads_as_one():
    p = decode_plan(3, 72, 192, group_size=64)
    assert p["tiles"] == 1 and p["features"] == 512
    assert "1 tile of 512 features" in w4.describe_launch(3, 72, 192, group_size=64, config=DECODE)


def test_other_gpus_scale_the_plan():
    small, large = decode_plan(1, 8192, 8192, sm_count=66), decode_plan(1, 8192, 8192, sm_count=132)
    assert small["ctas"] <= 2 * 66 < large["ctas"]


def test_cutlass_configs_describe_their_tiles():
    cutlass = [c for c in w4.list_configs() if c["schedule"] != "decode" and not c["zeros"]]
    if not cutlass:
        pytest.skip("no CUTLASS config in this (subset) build")
    c = cutlass[0]
    text = w4.describe_launch(4096, 8192, 8192, config=c["name"])
    tiles = math.ceil(8192 / c["tile_n"]) * math.ceil(4096 / c["tile_m"])
    assert text.startswith(f"{c['name']}: CUTLASS SM90 mixed-input GEMM (")
    assert f"tiles of {c['tile_n']} features x {c['tile_m']} tokens x {c['tile_k']} k" in text
    assert text.endswith(f": {tiles} output tiles on 132 SMs")


def test_auto_names_the_heuristic_choice():
    for m in (1, 16, 256, 4096):
        assert w4.describe_launch(m, 8192, 8192).startswith(w4.select_config(m, 8192, 8192) + ": ")


@pytest.mark.gpu
@pytest.mark.parametrize("mnk", [(1, 8192, 8192), (16, 8192, 28672), (64, 4096, 4096), (4096, 8192, 8192)])
def test_cli_reports_the_launch_of_this_gpu(mnk):
    import json
    import subprocess

    from w4a16_gemm import _cli

    r = subprocess.run([_cli.executable_path(), *map(str, mnk), "--json", "--iters", "3", "--warmup", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    text = w4.describe_launch(*mnk, sm_count=0)
    assert text == f"{report['config']}: {report['launch']}"
    if "decode kernel" in text:
        p = PLAN.match(text)
        assert p and int(p["ctas"]) <= 2 * w4.device_info()["sm_count"], text
