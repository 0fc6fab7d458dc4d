"""The benchmark harness's CPU parts (python/w4a16_gemm/bench.py): bucket summaries, the table, which peers run.
The timing itself needs a GPU and torch (benchmarks/run_device.sh)."""

import io
import math

import numpy as np
import pytest

from w4a16_gemm import bench


def _row(m, n, k, floor, ours, cublas, **extra):
    return {"model": "m", "layer": "l", "M": m, "N": n, "K": k, "floor_us": floor, "w4a16_us": ours,
            "cublas_us": cublas, **extra}


def _result(rows, impls=("w4a16", "cublas")):
    meta = {"gpu": "test GPU", "copy_bw_Bps": 4e12, "peak_flops": 7.6e14, "torch": "x", "w4a16_gemm": "y",
            "skipped": {"gemlite": "gemlite not importable (ModuleNotFoundError: ...)"}}
    return {"meta": meta, "rows": rows, "impls": list(impls)}


def test_summary_buckets_are_geometric_means_with_worst_and_lowest_points():
    rows = [_row(1, 4096, 4096, 2.0, 4.0, 16.0), _row(16, 4096, 4096, 2.0, 9.0, 18.0),
            _row(64, 8192, 8192, 10.0, 20.0, 25.0), _row(256, 8192, 8192, 40.0, 50.0, 45.0),
            _row(4096, 8192, 8192, 700.0, 720.0, 700.0)]
    summary = bench.summarize(_result(rows))
    assert list(summary) == ["M 1-16", "M 32-256", "M 512-8192"]
    small = summary["M 1-16"]["w4a16"]
    assert small["points"] == 2
    assert small["time_over_floor"] == pytest.approx(math.sqrt(2.0 * 4.5))
    assert small["speedup_vs_cublas"] == pytest.approx(math.sqrt(4.0 * 2.0))
    assert small["worst"] == {"M": 16, "N": 4096, "K": 4096, "time_over_floor": 4.5}
    mid = summary["M 32-256"]["w4a16"]
    assert mid["lowest_speedup"]["M"] == 256 and mid["lowest_speedup"]["speedup"] == pytest.approx(0.9)
    assert summary["M 32-256"]["cublas"]["speedup_vs_cublas"] == pytest.approx(1.0)
    assert summary["M 512-8192"]["w4a16"]["time_over_floor"] == pytest.approx(720 / 700)


def test_points_without_a_time_stay_out_of_the_means():
    rows = [_row(1, 4096, 4096, 2.0, 4.0, 16.0), _row(4, 4096, 4096, 2.0, None, 16.0, w4a16_note="wrong result")]
    entry = bench.summarize(_result(rows))["M 1-16"]["w4a16"]
    assert entry["points"] == 1 and entry["time_over_floor"] == pytest.approx(2.0)


def test_table_lists_every_point_the_buckets_and_the_skipped_peers():
    rows = [_row(1, 4096, 4096, 2.0, 4.0, 16.0, w4a16_config="w4a16_sm90_decode_m256_s", w4a16_latency_us=12.5),
            _row(512, 6144, 4096, 33.0, 41.0, 36.7, w4a16_config="w4a16_sm90_n128_m256_k64_c2x1_coop_s")]
    result = _result(rows)
    out = io.StringIO()
    bench.print_table(result, bench.summarize(result), out=out)
    text = out.getvalue()
    assert "# skipped gemlite: gemlite not importable" in text
    assert "| 1 | 4096 | 4096 | 2.0 | 4.0 | 16.0 | 4.00 | 2.00 | 12.5 | decode_m256_s |" in text
    assert "| 512 | 6144 | 4096 | 33.0 | 41.0 | 36.7 | 0.90 | 1.24 | - | n128_m256_k64_c2x1_coop_s |" in text
    assert "| M 1-16 | 2.00 (4.00x) | 8.00 (1.00x) |" in text


def test_peers_that_do_not_import_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setitem(bench.PEER_MODULES, "gemlite", ("w4a16_no_such_module", "gemlite"))
    reason = bench._available(None, "gemlite")
    assert reason.startswith("gemlite not importable (ModuleNotFoundError")
    assert bench._available(None, "cublas") is None
    assert "unknown implementation" in bench._available(None, "tensorrt")
    assert set(bench.PEER_MODULES) <= set(bench.IMPLS)


def test_int4_weights_and_their_hqq_form_for_gemlite_are_the_same_weights():
    rng = np.random.default_rng(3)
    q, s = bench._random_int4(rng, 256, 64, 128)
    assert q.shape == (256, 64) and s.shape == (2, 64) and s.dtype == np.float16
    assert q.min() >= -8 and q.max() <= 7 and len(np.unique(q)) == 16
    w = q.astype(np.float64) * np.repeat(s.astype(np.float64), 128, axis=0)
    # what GemliteImpl packs, with the integer zero point 8: w = (W_q - 8) * scales
    w_q, scales = bench._hqq_int4(q, s)
    assert w_q.dtype == np.uint8 and w_q.shape == (64, 256) and w_q.min() >= 0 and w_q.max() <= 15
    assert scales.dtype == np.float16 and scales.shape == (64, 2)
    hqq = (w_q.astype(np.float64) - 8) * np.repeat(scales.astype(np.float64), 128, axis=1)
    np.testing.assert_array_equal(hqq.T, w)


def test_default_implementations_include_the_peers():
    assert bench.DEFAULT_IMPLS.split(",") == ["w4a16", "cublas", "fbgemm", "gemlite"]
    assert all(name in bench.IMPLS for name in bench.DEFAULT_IMPLS.split(","))
