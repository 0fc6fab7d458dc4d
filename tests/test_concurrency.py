"""gemm() from many Python threads at once (marker `gpu`; skipped without an SM90 GPU).

- 8 threads, each with its own torch stream and its own weights, call gemm many times concurrently: every
  result is bit-identical to the one the same call gave serially (same config, no split-K, so the kernels
  are deterministic);
- the GIL is released while a launch blocks: with a long kernel at the head of a stream, launches behind it
  fill CUDA's launch queue and the next launch waits inside the driver; a counter thread must keep
  counting during that wait (a held GIL would freeze it);
- the caches are thread-safe: 8 threads making the first call with one fresh QuantizedWeight upload it
  exactly once and all get the right result; concurrent host-path (numpy) calls agree with serial ones;
  failing calls report their own error message on their own thread (the C API keeps it thread-local).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import w4a16_gemm as w4
from conftest import hardening_report as report, make_weight

pytestmark = pytest.mark.gpu
N_THREADS = 8
ITERS = 40


def run_threads(target, n=N_THREADS):
    """Starts n threads on target(i), joins them, re-raises the first exception any of them hit."""
    errors: list[BaseException] = []

    def wrap(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(i,), name=f"gemm-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), f"{t.name} hung"
    if errors:
        raise errors[0]


# m spans the decode range and several tile shapes, so that different configs run side by side.
PROBLEMS = [(1, 1024, 1024, 128, False), (7, 2048, 512, 64, True), (16, 4096, 1024, 128, False),
            (33, 520, 2048, 128, True), (64, 1032, 1024, 1024, False), (100, 256, 4096, 64, True),
            (200, 3072, 512, 128, False), (300, 1024, 1024, 64, True)]


def test_threads_with_own_streams_match_serial(rng, torch):
    problems = []
    for m, n, k, g, zeros in PROBLEMS:
        w = make_weight(rng, k, n, g, zeros)
        x = torch.from_numpy(rng.uniform(-1, 1, size=(m, k)).astype(np.float16)).cuda()
        bias = torch.from_numpy(rng.standard_normal(n).astype(np.float16)).cuda()
        problems.append((w, x, bias))
    serial = []
    for w, x, bias in problems:
        serial.append(w4.gemm(x, w, bias=bias, alpha=0.5))
    torch.cuda.synchronize()
    for (w, x, bias), y in zip(problems, serial):
        ref = w4.reference_gemm(x.cpu().numpy(), w, bias=bias.cpu().numpy(), alpha=0.5)
        err = np.linalg.norm(y.cpu().numpy().astype(np.float64) - ref) / np.linalg.norm(ref)
        assert err < 2e-3

    barrier = threading.Barrier(N_THREADS)
    mismatches = [0] * N_THREADS
    spans = [(0.0, 0.0)] * N_THREADS

    def worker(i):
        w, x, bias = problems[i]
        stream = torch.cuda.Stream()
        outs = []
        with torch.cuda.stream(stream):
            barrier.wait()
            t0 = time.perf_counter()
            for _ in range(ITERS):
                out = torch.full(serial[i].shape, float("nan"), dtype=torch.float16, device="cuda")
                assert w4.gemm(x, w, bias=bias, alpha=0.5, out=out) is out
                outs.append(out)
            t1 = time.perf_counter()
        stream.synchronize()
        spans[i] = (t0, t1)
        mismatches[i] = sum(not torch.equal(o, serial[i]) for o in outs)

    run_threads(worker)
    # The threads really ran at the same time: every thread started before any other finished.
    overlap = max(s for s, _ in spans) < min(e for _, e in spans)
    report(f"concurrency: {N_THREADS} threads x {ITERS} calls, own streams + weights: "
           f"mismatches={sum(mismatches)} overlapping={overlap}")
    assert mismatches == [0] * N_THREADS, f"results differ from the serial ones: {mismatches}"


def test_gil_is_released_while_a_launch_blocks(rng, torch):
    w = make_weight(rng, 256, 128, 128, False)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(1, 256)).astype(np.float16)).cuda()
    out = torch.empty((1, 128), dtype=torch.float16, device="cuda")
    w4.gemm(x, w, out=out)  # uploads the weight and warms everything up
    torch.cuda.synchronize()

    count = [0]
    stop = threading.Event()

    def counter():
        # Yields the GIL every 100 counts (time.sleep releases it), so the launching thread is never starved
        # and fills the launch queue quickly; a launch that blocked while holding the GIL would still freeze
        # this loop, since it needs the GIL to count at all.
        while not stop.is_set():
            for _ in range(100):
                count[0] += 1
            time.sleep(0)

    stream = torch.cuda.Stream()
    longest = (0.0, 0, 0)  # (seconds, counter before, counter after) of the slowest launch
    launches = 0
    counting = threading.Thread(target=counter)
    counting.start()
    try:
        with torch.cuda.stream(stream):
            torch.cuda._sleep(3_000_000_000)  # ~1.5-2 s of GPU time at the head of the stream
            deadline = time.perf_counter() + 20
            while launches < 50_000 and time.perf_counter() < deadline:
                before = count[0]
                t0 = time.perf_counter()
                w4.gemm(x, w, out=out)
                dt = time.perf_counter() - t0
                launches += 1
                if dt > longest[0]:
                    longest = (dt, before, count[0])
                if dt > 0.2:  # this launch waited for the queue: enough evidence
                    break
    finally:
        stop.set()
        counting.join()
        stream.synchronize()
    seconds, before, after = longest
    report(f"gil: longest launch {seconds * 1e3:.0f} ms after {launches} queued launches; counter thread "
           f"advanced {after - before} during it")
    assert seconds > 0.05, f"no launch blocked (longest {seconds * 1e3:.1f} ms over {launches} launches)"
    assert after - before > 1000, (f"the counter thread advanced only {after - before} while a launch blocked "
                                   f"for {seconds * 1e3:.0f} ms: the GIL was held")


def test_concurrent_first_use_of_one_weight(rng, torch, monkeypatch):
    import w4a16_gemm.ops as ops  # noqa: PLC0415

    allocations: list[int] = []
    real_allocate = ops._allocate
    lock = threading.Lock()

    def counting_allocate(nbytes, device):
        with lock:
            allocations.append(nbytes)
        return real_allocate(nbytes, device)

    monkeypatch.setattr(ops, "_allocate", counting_allocate)
    xs = [torch.from_numpy(rng.uniform(-1, 1, size=(5 + i, 1024)).astype(np.float16)).cuda() for i in range(N_THREADS)]
    torch.cuda.synchronize()
    for round_ in range(5):
        w = make_weight(rng, 1024, 1536, 128, round_ % 2 == 1)
        packed_bytes = w.packed.nbytes if round_ % 3 == 0 else None  # sometimes packed first, sometimes not
        allocations.clear()
        barrier = threading.Barrier(N_THREADS)
        results = [None] * N_THREADS

        def worker(i):
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                barrier.wait()
                results[i] = w4.gemm(xs[i], w)
            stream.synchronize()

        run_threads(worker)
        packed_bytes = packed_bytes or w.packed.nbytes
        assert allocations.count(packed_bytes) == 1, f"round {round_}: packed weight uploaded {allocations}"
        assert list(w._device_copies) == [torch.cuda.current_device()]
        for i in range(N_THREADS):
            again = w4.gemm(xs[i], w)
            torch.cuda.synchronize()
            assert torch.equal(results[i], again)
            ref = w4.reference_gemm(xs[i].cpu().numpy(), w)
            err = np.linalg.norm(results[i].cpu().numpy().astype(np.float64) - ref) / np.linalg.norm(ref)
            assert err < 2e-3
    report(f"concurrency: first use of one fresh weight from {N_THREADS} threads x 5 rounds: one upload each, "
           "results correct")


def test_host_path_threads_match_serial(rng):
    problems = [(make_weight(rng, k, n, g, z), rng.uniform(-1, 1, size=(m, k)).astype(np.float16))
                for m, n, k, g, z in PROBLEMS]
    serial = [w4.gemm(x, w) for w, x in problems]
    results: list[list] = [[] for _ in range(N_THREADS)]

    def worker(i):
        w, x = problems[i]
        for _ in range(10):
            results[i].append(w4.gemm(x, w))

    run_threads(worker)
    bad = sum(not np.array_equal(r, serial[i]) for i in range(N_THREADS) for r in results[i])
    report(f"concurrency: {N_THREADS} threads x 10 host-path (numpy) calls: mismatches={bad}")
    assert bad == 0


def test_errors_stay_on_their_thread(rng, torch):
    """Half the threads make a failing call (a config of the wrong mode), half a good one, in a loop: each
    failure carries its own message, and the good calls are unaffected."""
    by_mode = {z: [c["name"] for c in w4.list_configs() if bool(c["zeros"]) == z] for z in (False, True)}
    if not by_mode[False] or not by_mode[True]:
        pytest.skip("needs configs of both modes in this build")
    w_plain = make_weight(rng, 512, 256, 128, False)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(8, 512)).astype(np.float16)).cuda()
    good = w4.gemm(x, w_plain)
    torch.cuda.synchronize()
    barrier = threading.Barrier(N_THREADS)

    def worker(i):
        stream = torch.cuda.Stream()
        wrong = by_mode[True][i % len(by_mode[True])]
        with torch.cuda.stream(stream):
            barrier.wait()
            for _ in range(50):
                if i % 2:
                    with pytest.raises(ValueError, match=f"config {wrong} is for zero-point weights"):
                        w4.gemm(x, w_plain, config=wrong)
                else:
                    y = w4.gemm(x, w_plain)
                    stream.synchronize()
                    assert torch.equal(y, good)

    run_threads(worker)
