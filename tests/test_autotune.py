"""Autotuning bookkeeping that needs no GPU: buckets, the switch, the cache file."""

import importlib
import json

import numpy as np
import pytest

import w4a16_gemm as w4
autotune = importlib.import_module("w4a16_gemm.autotune")  # the module; w4.autotune is the function


@pytest.mark.parametrize("m,bucket", [(1, 1), (2, 2), (3, 4), (16, 16), (17, 32), (1000, 1024), (8192, 8192)])
def test_m_bucket_is_the_next_power_of_two(m, bucket):
    assert autotune.m_bucket(m) == bucket


def test_switch(monkeypatch):
    monkeypatch.delenv("W4A16_AUTOTUNE", raising=False)
    assert autotune.enabled()
    for off in ("0", "off", "false"):
        monkeypatch.setenv("W4A16_AUTOTUNE", off)
        assert not autotune.enabled()


def test_cache_round_trip(tmp_path, monkeypatch):
    path = str(tmp_path / "sub" / "cache.json")
    monkeypatch.setenv("W4A16_AUTOTUNE_CACHE", path)
    assert autotune.cache_path(0) == path
    table = {autotune._key(5, 4096, 4096, 128, False): {"config": "heuristic", "times_ms": {"heuristic": 0.01}}}
    autotune._store(path, table)
    data = json.loads((tmp_path / "sub" / "cache.json").read_text())
    assert data["library_version"] == w4.__version__ and data["entries"] == table
    autotune._memory.pop(path, None)
    assert autotune._load(path) == table
    assert "m8_n4096_k4096_g128_s" in table


def test_autotune_rejects_bad_arguments():
    with pytest.raises(TypeError, match="QuantizedWeight"):
        w4.autotune(np.zeros((64, 8)), 1)
    qw = w4.quantize(np.ones((64, 8), np.float32), group_size=64)
    with pytest.raises(ValueError, match="positive"):
        w4.autotune(qw, [0])
