"""The one list of CUTLASS SM90 kernel instantiations w4a16-gemm compiles.

Each entry becomes one generated .cu file (kernels/generate.py) and one entry of the runner's registry.
Naming follows the user's dimensions, not CUTLASS's: the kernels compute out^T = W^T x^T so that the int4
weights are the register-sourced WGMMA operand, hence
  tile_n  output features per CTA (CUTLASS tile M, a multiple of 64: one WGMMA M extent per consumer warpgroup)
  tile_m  tokens per CTA          (CUTLASS tile N, 16..256: small token tiles waste little at small M)
  tile_k  always 64 fp16 = 128 bytes of x per row, the widest TMA swizzle; it also lets one kernel serve
          group sizes 64, 128 and K (CUTLASS needs group_size % tile_k == 0 or group_size == K).
Every entry costs ~1-2 min of one core and ~7.5 GB of RAM to compile: add one only with a measurement that
shows it winning somewhere (benchmarks/NOTES.md).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Iterable

TILE_K = 64


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    tile_n: int
    tile_m: int
    cluster_n: int = 1
    cluster_m: int = 1
    schedule: str = "coop"  # "coop" (two warpgroups split tile_n) or "pingpong" (each warpgroup owns a tile)
    zeros: bool = False  # False: w = q*s; True: w = q*s + z
    stream_k: bool = False  # CUTLASS's stream-K scheduler: splits K across CTAs when tiles < SMs (coop only)

    def __post_init__(self) -> None:
        if self.schedule not in ("coop", "pingpong"):
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.schedule == "coop" and self.tile_n % 128:
            raise ValueError("cooperative kernels split tile_n over two warpgroups: tile_n must be a multiple of 128")
        if self.stream_k and self.schedule != "coop":
            raise ValueError("stream-K needs the cooperative schedule")
        if self.tile_n % 64 or self.tile_m not in (16, 32, 64, 128, 192, 256):
            raise ValueError(f"unsupported tile {self.tile_n}x{self.tile_m}")

    @property
    def name(self) -> str:
        mode = "sz" if self.zeros else "s"
        schedule = self.schedule + ("_streamk" if self.stream_k else "")
        return (f"w4a16_sm90_n{self.tile_n}_m{self.tile_m}_k{TILE_K}_"
                f"c{self.cluster_n}x{self.cluster_m}_{schedule}_{mode}")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """The decode kernels for m <= max_m (csrc/decode_gemm.cu: mma.sync up to m = 16, warpgroup MMA above; no
    CUTLASS collective). The default heuristic takes them up to m = 128 where they win (csrc/heuristic.cpp).

    They are compiled once for both weight modes; one registry entry per mode, so that config names and the
    zero-point check work the same as for the CUTLASS kernels."""

    zeros: bool = False
    max_m: int = 256  # must equal kDecodeMaxM in csrc/decode_gemm.cuh

    @property
    def name(self) -> str:
        return f"w4a16_sm90_decode_m{self.max_m}_{'sz' if self.zeros else 's'}"


def _both_modes(configs: Iterable[KernelConfig]) -> list[KernelConfig]:
    out = []
    for c in configs:
        out.append(c)
        out.append(dataclasses.replace(c, zeros=True))
    return out


# Scale-only and scale+zero kernels share the tile list: a model quantized with zero points (AWQ, GPTQ
# asymmetric) must get the same shapes covered as a symmetric one.
CONFIGS: list[KernelConfig | DecodeConfig] = _both_modes([
    # Decode / small batches: TensorRT-LLM's best SM90 tile at M <= 16 is 128 (weights) x 16 (tokens).
    KernelConfig(128, 16),
    KernelConfig(128, 32),
    KernelConfig(128, 64),
    # Mixed batches.
    KernelConfig(128, 128),
    # Prefill: 128 x 256 with 2-CTA clusters along the weights, so each x tile is multicast to both CTAs.
    KernelConfig(128, 256, cluster_n=2),
    KernelConfig(64, 128, schedule="pingpong"),
    # Stream-K (K split over the SMs, deterministic fix-up in the workspace) for layers whose data-parallel
    # tiles leave SMs idle: narrow layers at M 17-256 (4096 x 14336, M = 32: 60 -> 26 us) and wave-quantized
    # large M (10240 x 8192, M = 512: 139 -> 128 us). Config sweep of 2026-11-25, benchmarks/NOTES.md.
    KernelConfig(128, 32, stream_k=True),
    KernelConfig(128, 64, stream_k=True),
    KernelConfig(128, 128, stream_k=True),
    # The prefill tile with stream-K, for large M where its data-parallel grid leaves a mostly empty last wave
    # (10240 x 8192, M = 512: 160 tiles = 1.2 waves, 0.89x cuBLAS in the H200 grid of 2026-12-02; 1.00x with it).
    # Below one wave (6144 x 4096, M = 512: 96 tiles) splitting K did not help: csrc/heuristic.cpp.
    KernelConfig(128, 256, cluster_n=2, stream_k=True),
]) + [DecodeConfig(zeros=False), DecodeConfig(zeros=True)]


def select(pattern: str | None) -> list[KernelConfig | DecodeConfig]:
    """The configs whose name matches any of the comma-separated globs (all when pattern is empty)."""
    if not pattern:
        return list(CONFIGS)
    globs = [g.strip() for g in pattern.split(",") if g.strip()]
    chosen = [c for c in CONFIGS if any(fnmatch.fnmatch(c.name, g) for g in globs)]
    if not chosen:
        raise ValueError(f"W4A16_KERNELS={pattern!r} matches no kernel; known: {[c.name for c in CONFIGS]}")
    return chosen
