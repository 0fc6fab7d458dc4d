"""Stand-alone reproducers for crashes the hardening tests found (run under the native backtrace handler:
LD_PRELOAD=$(python3 scripts/hardening/native_backtrace.py build) python3 scripts/hardening/crash_repro.py MODE).

  first-use       8 threads make the first gemm() with one fresh QuantizedWeight (packing and upload race
                  with launches), each on its own torch stream; 20 rounds (tests/test_concurrency.py)
  first-use-packed   the same, with the weight packed on the main thread first
  launch-only     the same, with the weight packed and uploaded first: only concurrent launches remain
  pack-only       8 threads pack fresh weights concurrently, no GPU work
  large-weight    one gemm with a weight of 2^31+ int4 values (tests/test_large.py)
Prints 'MODE ok' when nothing crashed.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

import w4a16_gemm as w4

N_THREADS, ROUNDS = 8, 20


def make_weight(rng, k, n, g, zeros):
    q = (np.frombuffer(rng.bytes(k * n), dtype=np.uint8).reshape(k, n) & np.uint8(15)).view(np.int8)
    q -= np.int8(8)
    s = ((rng.random((k // g, n)) + 0.5) / (4 * np.sqrt(k))).astype(np.float16)
    z = (rng.standard_normal((k // g, n)) / np.sqrt(k)).astype(np.float16) if zeros else None
    return w4.QuantizedWeight.from_int4(q, s, z, group_size=g)


def run_threads(fn):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def first_use(mode: str) -> None:
    import torch

    rng = np.random.default_rng(7)
    xs = [torch.from_numpy(rng.uniform(-1, 1, size=(5 + i, 1024)).astype(np.float16)).cuda() for i in range(N_THREADS)]
    torch.cuda.synchronize()
    for r in range(ROUNDS):
        w = make_weight(rng, 1024, 1536, 128, r % 2 == 1)
        if mode in ("first-use-packed", "launch-only"):
            _ = w.packed
        if mode == "launch-only":
            w._on_device(torch.cuda.current_device())
        barrier = threading.Barrier(N_THREADS)
        results = [None] * N_THREADS

        def worker(i):
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                barrier.wait()
                results[i] = w4.gemm(xs[i], w)
            stream.synchronize()

        run_threads(worker)
        print(f"{mode}: round {r} ok", flush=True)


def pack_only() -> None:
    rng = np.random.default_rng(8)
    for r in range(ROUNDS):
        ws = [make_weight(rng, 1024, 1536, 128, False) for _ in range(N_THREADS)]
        run_threads(lambda i: ws[i].packed)
        print(f"pack-only: round {r} ok", flush=True)


def large_weight() -> None:
    import torch

    rng = np.random.default_rng(31)
    w = make_weight(rng, 32768, 65552, 128, False)
    x = torch.empty((16, 32768), dtype=torch.float16, device="cuda").uniform_(-1, 1)
    y = w4.gemm(x, w)
    torch.cuda.synchronize()
    print("large-weight: finite outputs:", bool(torch.isfinite(y).all()), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode in ("first-use", "first-use-packed", "launch-only"):
        first_use(mode)
    elif mode == "pack-only":
        pack_only()
    elif mode == "large-weight":
        large_weight()
    else:
        sys.exit(__doc__)
    print(f"{mode} ok")
