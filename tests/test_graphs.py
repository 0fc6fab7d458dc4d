"""gemm() captured in CUDA graphs (torch.cuda.graph) and replayed with new inputs (marker `gpu`).

torch's recipe: warm up on a side stream first (here that also uploads the weights, which allocates and so
may not happen during capture), then capture with out= given (gemm then allocates nothing), then copy new
data into the static inputs and replay. Every replay's outputs are poisoned with NaN before it.
"""

from __future__ import annotations


import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import hardening_report as report, make_weight, rel_err

pytestmark = pytest.mark.gpu
REL_TOL = 2e-3


def warm_up(torch, calls, stream=None):
    """Runs calls() on a side stream (torch's pre-capture recipe) and waits for it."""
    side = stream or torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            calls()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()


@pytest.mark.parametrize("m,n,k,g,zeros,bias,config", [
    (1, 4096, 4096, 128, False, False, None),    # decode (config=None may take a decode path here)
    (5, 1032, 1024, 64, True, True, None),
    (16, 2048, 512, 512, False, True, None),
    (77, 520, 1024, 128, True, False, None),
    (300, 1536, 768, 64, False, True, None),
    (40, 264, 256, 128, False, True, "first"),   # an explicit config name
])
def test_capture_and_replay_with_new_inputs(rng, torch, m, n, k, g, zeros, bias, config):
    if config == "first":
        config = next(c["name"] for c in w4.list_configs() if bool(c["zeros"]) == zeros)
    w = make_weight(rng, k, n, g, zeros)
    static_x = torch.zeros((m, k), dtype=torch.float16, device="cuda")
    static_out = torch.empty((m, n), dtype=torch.float16, device="cuda")
    b_host = rng.standard_normal(n).astype(np.float16) if bias else None
    static_b = torch.from_numpy(b_host).cuda() if bias else None

    def call():
        w4.gemm(static_x, w, bias=static_b, alpha=0.5, out=static_out, config=config)

    warm_up(torch, call)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    for _ in range(4):
        x = rng.uniform(-1, 1, size=(m, k)).astype(np.float16)
        static_x.copy_(torch.from_numpy(x))
        static_out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert rel_err(static_out.cpu().numpy(), w4.reference_gemm(x, w, bias=b_host, alpha=0.5)) < REL_TOL
    report(f"graphs: m={m} n={n} k={k} g={g} zeros={zeros} bias={bias} config={config}: 4 replays correct")


def test_capture_on_the_warm_up_stream(rng, torch):
    """Capturing on the very stream used for the warm-up (torch.cuda.graph(stream=...))."""
    w = make_weight(rng, 512, 256, 128, True)
    static_x = torch.zeros((9, 512), dtype=torch.float16, device="cuda")
    static_out = torch.empty((9, 256), dtype=torch.float16, device="cuda")
    side = torch.cuda.Stream()
    warm_up(torch, lambda: w4.gemm(static_x, w, out=static_out), stream=side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        w4.gemm(static_x, w, out=static_out)
    x = rng.uniform(-1, 1, size=(9, 512)).astype(np.float16)
    static_x.copy_(torch.from_numpy(x))
    static_out.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    assert rel_err(static_out.cpu().numpy(), w4.reference_gemm(x, w)) < REL_TOL


@pytest.mark.parametrize("zeros", [False, True])
def test_capture_a_config_with_a_workspace(rng, torch, zeros):
    """Stream-K configs need a workspace, kept per stream: warm up and capture on the same stream (a capture on
    a stream that never ran the call cannot allocate it, and says so)."""
    names = [c["name"] for c in w4.list_configs() if c.get("stream_k") and bool(c["zeros"]) == zeros]
    if not names:
        pytest.skip("no stream-K config in this build")
    m, n, k = 200, 1024, 4096
    w = make_weight(rng, k, n, 128, zeros)
    static_x = torch.zeros((m, k), dtype=torch.float16, device="cuda")
    static_out = torch.empty((m, n), dtype=torch.float16, device="cuda")
    side = torch.cuda.Stream()

    def call():
        w4.gemm(static_x, w, out=static_out, config=names[0])

    warm_up(torch, call, stream=side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        call()
    for _ in range(3):
        x = rng.uniform(-1, 1, size=(m, k)).astype(np.float16)
        static_x.copy_(torch.from_numpy(x))
        static_out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert rel_err(static_out.cpu().numpy(), w4.reference_gemm(x, w)) < REL_TOL
    report(f"graphs: stream-K config {names[0]} (workspace) captured on its warm-up stream: 3 replays correct")


def test_several_gemms_in_one_graph(rng, torch):
    """A two-layer chain (the second reads the first's output), plus an independent GEMM with zero points and
    bias, in one graph; replayed with new inputs several times."""
    m, k1, n1, n2, n3 = 12, 1024, 2048, 512, 776
    w1 = make_weight(rng, k1, n1, 128, False)
    w2 = make_weight(rng, n1, n2, 64, True)
    w3 = make_weight(rng, k1, n3, k1, True)
    b2 = rng.standard_normal(n2).astype(np.float16)
    b3 = rng.standard_normal(n3).astype(np.float16)
    b2_t, b3_t = torch.from_numpy(b2).cuda(), torch.from_numpy(b3).cuda()
    static_x = torch.zeros((m, k1), dtype=torch.float16, device="cuda")
    h = torch.empty((m, n1), dtype=torch.float16, device="cuda")
    y = torch.empty((m, n2), dtype=torch.float16, device="cuda")
    z = torch.empty((m, n3), dtype=torch.float16, device="cuda")

    def calls():
        w4.gemm(static_x, w1, out=h)
        w4.gemm(h, w2, bias=b2_t, alpha=0.25, out=y)
        w4.gemm(static_x, w3, bias=b3_t, out=z)

    warm_up(torch, calls)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        calls()
    for _ in range(3):
        x = rng.uniform(-1, 1, size=(m, k1)).astype(np.float16)
        static_x.copy_(torch.from_numpy(x))
        for t in (h, y, z):
            t.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        h_host = h.cpu().numpy()
        assert rel_err(h_host, w4.reference_gemm(x, w1)) < REL_TOL
        # The second layer against the reference on the first layer's actual (fp16) output.
        assert rel_err(y.cpu().numpy(), w4.reference_gemm(h_host, w2, bias=b2, alpha=0.25)) < REL_TOL
        assert rel_err(z.cpu().numpy(), w4.reference_gemm(x, w3, bias=b3)) < REL_TOL
    report("graphs: 3 gemms (chained + zeros/bias) in one graph: 3 replays correct")


def test_replays_interleaved_with_eager_calls(rng, torch):
    """Eager calls between replays (same weights, other buffers) disturb neither."""
    w = make_weight(rng, 256, 128, 64, False)
    static_x = torch.zeros((3, 256), dtype=torch.float16, device="cuda")
    static_out = torch.empty((3, 128), dtype=torch.float16, device="cuda")
    warm_up(torch, lambda: w4.gemm(static_x, w, out=static_out))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        w4.gemm(static_x, w, out=static_out)
    for _ in range(3):
        x = rng.uniform(-1, 1, size=(3, 256)).astype(np.float16)
        other = rng.uniform(-1, 1, size=(50, 256)).astype(np.float16)
        static_x.copy_(torch.from_numpy(x))
        graph.replay()
        eager = w4.gemm(torch.from_numpy(other).cuda(), w)
        torch.cuda.synchronize()
        assert rel_err(static_out.cpu().numpy(), w4.reference_gemm(x, w)) < REL_TOL
        assert rel_err(eager.cpu().numpy(), w4.reference_gemm(other, w)) < REL_TOL
