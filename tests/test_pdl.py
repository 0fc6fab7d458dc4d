"""Programmatic dependent launch (w4a16.h: the default launch) keeps stream order where it matters (marker `gpu`).

Each kernel may start while the one before it runs, but must read x and write out only after that kernel has
finished. A chain of layers where each reads the previous layer's output and writes the buffer the layer
before it read (read-after-write and write-after-read through ping-pong buffers), with a long layer followed by
short ones to give a wrong early read every chance, must give bit for bit what plain stream-ordered launches
give, eagerly and inside a CUDA graph.
"""

from __future__ import annotations

import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import make_weight, rel_err

pytestmark = pytest.mark.gpu

# (m, hidden): m = 4 and 16 take the mma.sync decode kernels, 48 and 100 the warpgroup-MMA ones, 96 alternates
# those (k = 1024) and a stream-K CUTLASS kernel (k = 16384, launched without PDL), 300 data-parallel CUTLASS
# kernels; hidden alternates a wide (slow) and a narrow (quick) layer. m = 2 on 8192 x 8192 layers: the decode
# kernel's split-K fix-up through the workspace, which every layer of the chain reuses (its counters and partials
# may be touched only after the layer before has finished).
CHAINS = [(4, (8192, 1024)), (16, (4096, 1024)), (48, (4096, 1024)), (100, (4096, 1024)), (96, (16384, 1024)),
          (300, (4096, 2048)), (2, (8192, 8192))]
LAYERS = 8


def zero_mean_weight(rng, k, n, zeros):
    """Like conftest.make_weight, with q in [-7, 7]: int4's extra -8 gives q a mean of -0.5, which a chain of
    layers amplifies (x sqrt(k) / 8 per layer) until fp16 overflows."""
    q = rng.integers(-7, 8, size=(k, n), dtype=np.int8)
    s = ((rng.random((k // 128, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // 128, n)) / np.sqrt(k)).astype(np.float16) if zeros else None
    return w4.QuantizedWeight.from_int4(q, s, z, group_size=128)


def run_chain(torch, weights, x, bufs, pdl, graph):
    def calls():
        src = x
        for i, w in enumerate(weights):
            dst = bufs[i % 2][: src.shape[0], : w.shape[1]]
            w4.gemm(src, w, out=dst, pdl=pdl)
            src = dst
        return src

    for b in bufs:
        b.fill_(float("nan"))
    if not graph:
        out = calls()
        torch.cuda.synchronize()
        return out.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        calls()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = calls()
    for b in bufs:
        b.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    return out.clone()


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("m,hidden", CHAINS)
def test_chain_with_pdl_equals_plain_launches(rng, torch, m, hidden, graph):
    wide, narrow = hidden
    dims = [narrow] + [wide if i % 2 == 0 else narrow for i in range(LAYERS)]
    weights = [zero_mean_weight(rng, dims[i], dims[i + 1], i % 3 == 2) for i in range(LAYERS)]
    x_host = rng.uniform(-1, 1, size=(m, dims[0])).astype(np.float16)
    x = torch.from_numpy(x_host).cuda()
    bufs = [torch.empty((m, wide), dtype=torch.float16, device="cuda") for _ in range(2)]
    plain = run_chain(torch, weights, x, bufs, pdl=False, graph=graph)
    with_pdl = run_chain(torch, weights, x, bufs, pdl=True, graph=graph)
    assert torch.isfinite(plain).all() and plain.float().abs().mean() > 1e-2  # a live signal, not zeros
    assert torch.equal(plain, with_pdl)
    # and the chain is right: the first layer against the float64 reference
    first = w4.gemm(x, weights[0]).cpu().numpy()
    assert rel_err(first, w4.reference_gemm(x_host, weights[0])) < 2e-3


def test_pdl_can_be_turned_off_per_call(rng, torch):
    qw = make_weight(rng, 1024, 2048, 128, False)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(8, 1024)).astype(np.float16)).cuda()
    assert torch.equal(w4.gemm(x, qw, pdl=False), w4.gemm(x, qw, pdl=True))
