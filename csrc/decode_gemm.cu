// Decode path of w4a16-gemm: see decode_gemm.cuh.
//
// Work split. The packed weights are 16x16 blocks (weight_layout.hpp), block (nb, kb) at byte
// (nb + kb * NBp) * 128, NBp = n_padded / 16. A CTA owns TN consecutive n-blocks (a "tile", TN*16 output
// features) and 1/split of K in 64-column chunks; the split CTAs of a tile form one thread-block cluster.
// Pipeline. K is walked in stages of two chunks (128 columns). A producer warp copies each stage into a
// shared-memory ring with bulk async copies (cp.async.bulk, the TMA engine, completing on an mbarrier): per
// k-block one contiguous TN*128-byte run of weights, per token its 128 columns of x, and the scale (zero) rows of
// the stage's two chunks. The ring takes ~200 KB of shared memory (one CTA per SM) or ~100 KB (when the grid
// needs two CTAs per SM resident), so a short CTA requests all its bytes at once.
// Math. 8 consumer warps each own TN/8 n-blocks. Per block a lane reads its 32-bit A fragment (LDS.32,
// conflict-free), turns its 8 nibbles into 4 half2 with lop3 + one HADD/HFMA each and issues one
// mma.m16n8k16 per 8 tokens, x being the B operand (ldmatrix from a padded, conflict-free x tile).
// Scale-only weights: the mma sums integer weights; at the end of each scale group the fp32 sums are scaled per
// row (acc += s * group_sum). Zero points, and the m > 8 kernel in grids of two CTAs per SM (registers):
// w = q*s (+ z) is formed in fp16 (HMUL2 / HFMA2) before the mma.
// Reduction: the consumer warps' fp32 accumulators go to shared memory; after a cluster barrier, CTA r of the
// cluster sums slice r of the tile's outputs over the cluster's CTAs in rank order through distributed shared
// memory, applies alpha and bias and writes fp16. Same inputs, same config -> same bits. No workspace.
#include "decode_gemm.cuh"

#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "kernel_registry.h"

namespace w4a16 {
namespace decode_detail {

namespace cg = cooperative_groups;

constexpr int kChunkKb = 4;       // a "chunk" = 64 columns of k = 4 k-blocks; splits and scale groups align to it
constexpr int kStageKb = 8;       // k-blocks per pipeline stage (two chunks, k = 128)
constexpr int kXRowBytes = 272;   // 128 halves of one token + 16 bytes of padding (conflict-free ldmatrix)
constexpr int kMaxSplit = 8;      // portable cluster size
constexpr int kMaxStages = 48;
constexpr int kBarrierBytes = 1024;          // 2 * kMaxStages mbarriers, then the stage ring
constexpr int kSmemMax = 220 * 1024;         // dynamic shared memory limit we ask for

struct Params {
  const __half* x;
  const uint8_t* w;
  const __half* s;
  const __half* z;
  const __half* bias;
  __half* out;
  long long ldx, ldo;
  int m, n, nbp;     // tokens, output features, n_padded / 16
  int nch;           // chunks of 64 along K
  int group_shift;   // chunk index >> group_shift = scale row (31 when group_size == k)
  int split;
  int stages;        // ring depth
  int pdl;
  float alpha;
};

template <int CW, int TN, int MT, bool ZEROS>
struct Shape {
  static constexpr int kThreads = (CW + 1) * 32;               // CW consumer warps + one producer warp
  static constexpr int WN = TN / CW;                           // n-blocks per consumer warp
  static_assert(WN >= 1 && WN * CW == TN, "bad tile");
  static constexpr int NACC = WN * MT <= 2 ? 2 : 1;            // accumulator sets (two: shorter mma chains)
  static constexpr int kW = TN * kStageKb * 128;               // weight bytes per stage
  static constexpr int kX = 8 * MT * kXRowBytes;               // x bytes per stage
  static constexpr int kSRow = TN * 16 * 2;                    // one scale (zero) row of the tile
  static constexpr int kStage = kW + kX + (ZEROS ? 4 : 2) * kSRow;  // scale rows of both chunks (+ zero rows)
  static constexpr int kRowPitch = TN * 16 + 4;                // floats; 4 mod 32: conflict-free partial stores
  static constexpr int kRed = 8 * MT * kRowPitch * 4;          // partial-sum buffer (aliases the ring)
};

// ---- PTX wrappers ---------------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t ok;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(ok)
      : "r"(bar), "r"(parity)
      : "memory");
  return ok != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
__device__ __forceinline__ uint64_t policy_evict_first() {
  uint64_t pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  return pol;
}
// Bulk async copy global -> this CTA's shared memory, completing `bytes` on the mbarrier.
__device__ __forceinline__ void bulk_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
__device__ __forceinline__ void bulk_g2s_hint(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar,
                                              uint64_t pol) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], "
      "%4;\n" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar), "l"(pol)
      : "memory");
}

// (a & b) ^ c in one LOP3 (the compiler splits it otherwise).
template <uint32_t B, uint32_t C>
__device__ __forceinline__ uint32_t and_xor(uint32_t a) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0x6a;\n" : "=r"(r) : "r"(a), "n"(B), "n"(C));
  return r;
}

__device__ __forceinline__ half2 as_h2(uint32_t u) {
  half2 h;
  *reinterpret_cast<uint32_t*>(&h) = u;
  return h;
}
__device__ __forceinline__ uint32_t as_u32(half2 h) { return *reinterpret_cast<uint32_t*>(&h); }

// One packed word -> the 4 A-fragment registers {v0,v1} {v2,v3} {v4,v5} {v6,v7} as exact fp16 integers in
// [-8, 7]. Nibble slots hold [v0,v2,v4,v6,v1,v3,v5,v7]; (w & 0x000F000F) ^ 0x64086408 = 0x6400 | (nib ^ 8) =
// 1024 + (q + 8) in each half, so subtracting 1032 gives q; the 0x00F0 nibbles come out as 1024 + 16 (q + 8),
// and x / 16 - 72 = q.
__device__ __forceinline__ void dequant_int(uint32_t w, half2 (&q)[4]) {
  const uint32_t w8 = w >> 8;
  const half2 k1032 = as_h2(0x64086408u);
  const half2 k1_16 = as_h2(0x2C002C00u);
  const half2 km72 = as_h2(0xD480D480u);
  q[0] = __hsub2(as_h2(and_xor<0x000F000Fu, 0x64086408u>(w)), k1032);
  q[1] = __hfma2(as_h2(and_xor<0x00F000F0u, 0x64806480u>(w)), k1_16, km72);
  q[2] = __hsub2(as_h2(and_xor<0x000F000Fu, 0x64086408u>(w8)), k1032);
  q[3] = __hfma2(as_h2(and_xor<0x00F000F0u, 0x64806480u>(w8)), k1_16, km72);
}

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// This CTA's shared-memory address -> the same offset in cluster CTA `rank` (a shared::cluster address).
__device__ __forceinline__ uint32_t map_to_rank(uint32_t addr, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}
__device__ __forceinline__ float4 ld_cluster_f4(uint32_t addr) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                            uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// ---- the kernel -----------------------------------------------------------------------------------------------

// Register budget. decode_select_config sizes grids for two CTAs per SM where the kernel allows it, and the register
// file is split over the four schedulers (16K registers each): two CTAs of 9 warps put 5 warps on one scheduler,
// so 5 x 32 x R <= 16384, R <= 96 (allocation in steps of 8). Unbounded, ptxas took 113 for the m <= 8 kernel
// and those grids ran in two waves: 70B gate_up at m = 1 took 78 us instead of 62 (H200; ncu "Block Limit
// Registers 1"). What decides the fit is the fp32 sums a lane keeps: the m > 8 kernel of 32-block tiles keeps 64
// (per-group sums of integer products plus the scaled total) and needed 127 registers (212 bytes of spills at 96),
// while 32 fit (92 registers when SCALE_IN_A drops the per-group sums). So a flavour runs two per SM iff its lane
// keeps at most 32 sums; the others get up to 224 registers and one CTA per SM.
template <int CW, int TN, int MT, bool SCALE_IN_A>
constexpr int lane_sums() {
  using S = Shape<CW, TN, MT, false>;  // (zero points do not change the accumulators)
  return S::WN * MT * 4 * (SCALE_IN_A ? S::NACC : S::NACC + 1);
}
constexpr int kTwoPerSmRegisters = 96;
template <int CW, int TN, int MT, bool SCALE_IN_A>
constexpr bool two_per_sm_kernel() {
  return lane_sums<CW, TN, MT, SCALE_IN_A>() <= 32;
}

// SCALE_IN_A: the dequantized weights are scaled (and shifted by the zero point) in fp16 before the mma, so the
// accumulators hold final sums; otherwise the mma sums integer weights and each scale group's fp32 sum is scaled
// (exact products, two accumulator sets). Zero points always take the first form.
template <int CW, int TN, int MT, bool ZEROS, bool SCALE_IN_A>
__global__ void __launch_bounds__(Shape<CW, TN, MT, ZEROS>::kThreads, 1)
    __maxnreg__((two_per_sm_kernel<CW, TN, MT, SCALE_IN_A>() ? kTwoPerSmRegisters : 224))
        decode_kernel(const Params p) {
  using S = Shape<CW, TN, MT, ZEROS>;
  constexpr int WN = S::WN, NACC = S::NACC, kThreads = S::kThreads;
  extern __shared__ __align__(1024) uint8_t smem[];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q4 = lane & 3;  // mma fragment coordinates: row group, column pair
  const int rank = blockIdx.x;  // split index = rank in the cluster (cluster dims = (split, 1, 1))
  const int tile = blockIdx.y;
  const int nb0 = tile * TN;
  const int n0 = nb0 * 16;
  // This CTA's chunks [c_begin, c_end); stage i holds chunks c_begin + 2i and c_begin + 2i + 1 (if < c_end).
  const int c_begin = static_cast<int>(static_cast<long long>(rank) * p.nch / p.split);
  const int c_end = static_cast<int>(static_cast<long long>(rank + 1) * p.nch / p.split);
  const int nstages = (c_end - c_begin + 1) >> 1;
  const int nstg = p.stages;
  const uint32_t bar_full = smem_addr(smem);            // nstg mbarriers: stage landed
  const uint32_t bar_empty = bar_full + kMaxStages * 8;   // nstg mbarriers: consumers done with the slot
  uint8_t* ring = smem + kBarrierBytes;
  const uint32_t ring_addr = smem_addr(ring);

  if (p.pdl) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");

  if (tid < nstg) {  // one thread per ring slot
    mbar_init(bar_full + 8 * tid, 1);
    mbar_init(bar_empty + 8 * tid, CW);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  float* red = reinterpret_cast<float*>(ring);  // partials, after the K loop: red[token][row]
  const uint32_t red_addr = ring_addr;

  float acc[WN][MT][4];  // the consumer warps' sums, stored to shared memory after the K loop
  if (warp == CW) {
    // ------------------------------------------------------------------ producer warp
    const uint64_t pol_w = policy_evict_first();
    const int nvalid_blocks = min(TN, p.nbp - nb0);
    const uint32_t wrun = nvalid_blocks * 128;
    const uint32_t srow_bytes = min(TN * 16, p.n - n0) * 2;
    auto stage_bytes = [&](int i) -> uint32_t {
      const int nvc = min(2, c_end - (c_begin + 2 * i));
      return nvc * (kChunkKb * wrun + p.m * 128 + (ZEROS ? 2 : 1) * srow_bytes);
    };
    auto issue_w = [&](int i, int slot) {
      const int c0 = c_begin + 2 * i;
      const int nvc = min(2, c_end - c0);
      if (lane < nvc * kChunkKb) {
        const long long kb = static_cast<long long>(c0) * kChunkKb + lane;
        bulk_g2s_hint(ring_addr + slot * S::kStage + lane * (TN * 128), p.w + (kb * p.nbp + nb0) * 128, wrun,
                      bar_full + 8 * slot, pol_w);
      }
    };
    auto issue_xs = [&](int i, int slot) {
      const int c0 = c_begin + 2 * i;
      const int nvc = min(2, c_end - c0);
      const uint32_t base = ring_addr + slot * S::kStage;
      for (int r = lane; r < p.m; r += 32)
        bulk_g2s(base + S::kW + r * kXRowBytes, p.x + r * p.ldx + static_cast<long long>(c0) * 64, nvc * 128,
                 bar_full + 8 * slot);
      const int which = lane >> 1, h = lane & 1;  // lanes 0,1: scale rows; 2,3: zero rows
      if (which < (ZEROS ? 2 : 1) && h < nvc) {
        const long long grp = (c0 + h) >> p.group_shift;
        bulk_g2s(base + S::kW + S::kX + (which * 2 + h) * S::kSRow, (which ? p.z : p.s) + grp * p.n + n0,
                 srow_bytes, bar_full + 8 * slot);
      }
    };
    const int pre = p.pdl == 2 ? min(nstg, nstages) : 0;
    for (int i = 0; i < pre; ++i) {  // weights first: no preceding kernel writes them
      if (lane == 0) mbar_arrive_expect_tx(bar_full + 8 * i, stage_bytes(i));
      __syncwarp();
      issue_w(i, i);
    }
    if (p.pdl) asm volatile("griddepcontrol.wait;\n" ::: "memory");
    for (int i = 0; i < pre; ++i) issue_xs(i, i);
    int slot = pre % nstg, round = pre / nstg;
    for (int i = pre; i < nstages; ++i) {
      if (round > 0) mbar_wait(bar_empty + 8 * slot, (round - 1) & 1);
      if (lane == 0) mbar_arrive_expect_tx(bar_full + 8 * slot, stage_bytes(i));
      __syncwarp();
      issue_w(i, slot);
      issue_xs(i, slot);
      if (++slot == nstg) {
        slot = 0;
        ++round;
      }
    }
  } else {
    // ------------------------------------------------------------------ consumer warps
    // part[u]: the mma sums of k-blocks of parity u (two chains when there are few); integer weights flush them
    // into acc, scaled, at the end of every scale group; weights scaled in fp16 (SCALE_IN_A) add them up at the end.
    float part[NACC][WN][MT][4];
#pragma unroll
    for (int j = 0; j < WN; ++j)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          acc[j][mt][e] = 0.f;
#pragma unroll
          for (int u = 0; u < NACC; ++u) part[u][j][mt][e] = 0.f;
        }
    // ldmatrix row addresses of this lane inside an x slot: lanes 8i..8i+7 give the rows of matrix i; matrix
    // (i & 1) is the low / high 8 columns of a k-block; (i >> 1) is the next token tile (MT >= 2) or the next
    // k-block (MT == 1). Token rows >= m are never copied: those lanes read row m-1 instead, which only feeds
    // output columns nobody stores.
    constexpr int kXAddr = MT >= 2 ? MT / 2 : 1;
    uint32_t x_lane_off[kXAddr];
#pragma unroll
    for (int t = 0; t < kXAddr; ++t) {
      const int lrow = min((MT >= 2 ? 2 * t * 8 + (lane >> 4) * 8 : 0) + (lane & 7), p.m - 1);
      x_lane_off[t] = lrow * kXRowBytes + ((lane >> 3) & 1) * 16 + (MT == 1 ? (lane >> 4) * 32 : 0);
    }

    int slot = 0;
    uint32_t phase = 0;
#pragma unroll 1
    for (int i = 0; i < nstages; ++i) {
      mbar_wait(bar_full + 8 * slot, phase);
      const uint8_t* sp = ring + slot * S::kStage;
      const uint32_t xs = ring_addr + slot * S::kStage + S::kW;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = c_begin + 2 * i + h;
        if (c >= c_end) break;
        const __half* srow = reinterpret_cast<const __half*>(sp + S::kW + S::kX + h * S::kSRow);
        half2 sc_lo[WN], sc_hi[WN], zr_lo[WN], zr_hi[WN];
        if (SCALE_IN_A) {
#pragma unroll
          for (int j = 0; j < WN; ++j) {
            const int row = (warp * WN + j) * 16 + g;
            sc_lo[j] = __half2half2(srow[row]);
            sc_hi[j] = __half2half2(srow[row + 8]);
            if (ZEROS) {
              zr_lo[j] = __half2half2(srow[2 * TN * 16 + row]);
              zr_hi[j] = __half2half2(srow[2 * TN * 16 + row + 8]);
            }
          }
        }
#pragma unroll
        for (int kk = 0; kk < kChunkKb; kk += 2) {
          const int kbl = h * kChunkKb + kk;  // k-blocks kbl and kbl + 1
          uint32_t a[2][WN][4];
#pragma unroll
          for (int u = 0; u < 2; ++u)
#pragma unroll
            for (int j = 0; j < WN; ++j) {
              const uint32_t word = *reinterpret_cast<const uint32_t*>(
                  sp + ((kbl + u) * TN + warp * WN + j) * 128 + lane * 4);
              half2 q[4];
              dequant_int(word, q);
              if (ZEROS) {
                a[u][j][0] = as_u32(__hfma2(q[0], sc_lo[j], zr_lo[j]));
                a[u][j][1] = as_u32(__hfma2(q[1], sc_hi[j], zr_hi[j]));
                a[u][j][2] = as_u32(__hfma2(q[2], sc_lo[j], zr_lo[j]));
                a[u][j][3] = as_u32(__hfma2(q[3], sc_hi[j], zr_hi[j]));
              } else if (SCALE_IN_A) {
                a[u][j][0] = as_u32(__hmul2(q[0], sc_lo[j]));
                a[u][j][1] = as_u32(__hmul2(q[1], sc_hi[j]));
                a[u][j][2] = as_u32(__hmul2(q[2], sc_lo[j]));
                a[u][j][3] = as_u32(__hmul2(q[3], sc_hi[j]));
              } else {
#pragma unroll
                for (int e = 0; e < 4; ++e) a[u][j][e] = as_u32(q[e]);
              }
            }
          if (MT == 1) {
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4(xs + x_lane_off[0] + kbl * 32, b0, b1, b2, b3);
#pragma unroll
            for (int j = 0; j < WN; ++j) {
              mma16816(part[0][j][0], a[0][j], b0, b1);
              mma16816(part[NACC - 1][j][0], a[1][j], b2, b3);
            }
          } else {
#pragma unroll
            for (int u = 0; u < 2; ++u)
#pragma unroll
              for (int mt = 0; mt < MT; mt += 2) {
                if (MT <= 2 || mt * 8 < p.m) {
                  uint32_t b0, b1, b2, b3;
                  ldmatrix_x4(xs + x_lane_off[mt / 2] + (kbl + u) * 32, b0, b1, b2, b3);
#pragma unroll
                  for (int j = 0; j < WN; ++j) {
                    mma16816(part[u % NACC][j][mt], a[u][j], b0, b1);
                    mma16816(part[u % NACC][j][mt + 1], a[u][j], b2, b3);
                  }
                }
              }
          }
        }
        if (!SCALE_IN_A && (c + 1 == c_end || ((c + 1) >> p.group_shift) != (c >> p.group_shift))) {
          // end of a scale group (or of this CTA's K range): acc += scale(row) * group sum
#pragma unroll
          for (int j = 0; j < WN; ++j) {
            const int row = (warp * WN + j) * 16 + g;
            const float s_lo = __half2float(srow[row]), s_hi = __half2float(srow[row + 8]);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                const float sum = NACC == 2 ? part[0][j][mt][e] + part[NACC - 1][j][mt][e] : part[0][j][mt][e];
                acc[j][mt][e] = fmaf(sum, e < 2 ? s_lo : s_hi, acc[j][mt][e]);
#pragma unroll
                for (int u = 0; u < NACC; ++u) part[u][j][mt][e] = 0.f;
              }
            }
          }
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(bar_empty + 8 * slot);
      if (++slot == nstg) {
        slot = 0;
        phase ^= 1u;
      }
    }
    if (SCALE_IN_A) {
#pragma unroll
      for (int j = 0; j < WN; ++j)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[j][mt][e] = NACC == 2 ? part[0][j][mt][e] + part[NACC - 1][j][mt][e] : part[0][j][mt][e];
    }
  }

  // The ring is free once every thread is here: the consumers waited for every copy. All threads pass the same
  // barriers (no named barrier for the consumer warps alone): racecheck reported the partial stores and the reads
  // below as hazards when the consumers synchronised among themselves first (decode_test check-small: 808
  // reports, the session-1 kernel too) and none with this sequence (scripts/decode_dev/racecheck.sh, 2026-11-25).
  __syncthreads();
  if (warp < CW) {
#pragma unroll
    for (int j = 0; j < WN; ++j) {
      const int row = (warp * WN + j) * 16 + g;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        float* r0 = red + (mt * 8 + 2 * q4) * S::kRowPitch + row;
        r0[0] = acc[j][mt][0];
        r0[S::kRowPitch] = acc[j][mt][1];
        r0[8] = acc[j][mt][2];
        r0[S::kRowPitch + 8] = acc[j][mt][3];
      }
    }
  }
  __syncthreads();
  cg::cluster_group cluster = cg::this_cluster();
  // Publishes the partials to the cluster. cg's cluster.sync() compiles to a GPU-scope MEMBAR plus an L1
  // invalidate (ncu: membar stalls on small layers); a hand-written release/acquire barrier.cluster compiles to the
  // same fence, so this stays cg's barrier. (The racecheck reports once blamed on the hand-written barrier came from
  // a consumer-only named barrier before the partial stores, since removed.)
  if (p.split > 1) cluster.sync();
  if (p.pdl) asm volatile("griddepcontrol.wait;\n" ::: "memory");  // out may still be read by the predecessor

  // Outputs of the tile in pieces of 8 features: item i = (token i / (2 TN), features 8 (i % (2 TN)) ..).
  const int items = 2 * TN * p.m;
  const int i_begin = rank * items / p.split, i_end = (rank + 1) * items / p.split;
  for (int it = i_begin + tid; it < i_end; it += kThreads) {
    const int mtok = it / (2 * TN), c8 = it % (2 * TN);
    const int n = n0 + c8 * 8;
    if (n >= p.n) continue;
    // All peers' partials are requested before any is added: distributed shared memory reads take hundreds of
    // cycles, and a load-add loop would pay that once per peer (ncu: barrier / long-scoreboard stalls dominate
    // small layers). 32-bit shared::cluster addresses keep the 16 loads in flight within the register budget
    // (generic 64-bit ones spilled at 96 registers). The sum still runs in rank order: deterministic.
    const uint32_t item_addr = red_addr + (mtok * S::kRowPitch + c8 * 8) * 4;
    float4 part_lo[kMaxSplit], part_hi[kMaxSplit];
#pragma unroll
    for (int r = 0; r < kMaxSplit; ++r) {
      if (r < p.split) {
        const uint32_t src = p.split > 1 ? map_to_rank(item_addr, r) : item_addr;
        part_lo[r] = ld_cluster_f4(src);
        part_hi[r] = ld_cluster_f4(src + 16);
      }
    }
    float sum[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) sum[e] = 0.f;
#pragma unroll
    for (int r = 0; r < kMaxSplit; ++r) {
      if (r < p.split) {
        const float4 lo = part_lo[r], hi = part_hi[r];
        sum[0] += lo.x; sum[1] += lo.y; sum[2] += lo.z; sum[3] += lo.w;
        sum[4] += hi.x; sum[5] += hi.y; sum[6] += hi.z; sum[7] += hi.w;
      }
    }
    uint32_t packed[4];
#pragma unroll
    for (int e = 0; e < 8; e += 2) {
      float v0 = p.alpha * sum[e], v1 = p.alpha * sum[e + 1];
      if (p.bias) {
        v0 += __half2float(p.bias[n + e]);
        v1 += __half2float(p.bias[n + e + 1]);
      }
      packed[e / 2] = as_u32(__floats2half2_rn(v0, v1));
    }
    *reinterpret_cast<uint4*>(p.out + mtok * p.ldo + n) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }

  // Keep this CTA's partials alive until every peer has read them. Relaxed arrival: this barrier publishes nothing,
  // and each peer's DSMEM loads have completed before it arrives (their values went into the stores above);
  // cg's cluster.sync() would add a GPU-scope MEMBAR and an L1 invalidate on the way out.
  if (p.split > 1) asm volatile("barrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;\n" ::: "memory");
}

// ---------------------------------------------------------------------------------------------------------------
// Host side.

template <int CW, int TN, int MT, bool ZEROS>
int smem_for_stages(int stages) {
  using S = Shape<CW, TN, MT, ZEROS>;
  return kBarrierBytes + std::max(stages * S::kStage, S::kRed);
}

// Ring depth: every stage of the CTA if that fits, else as many as fit in the budget: ~200 KB for one CTA per SM,
// ~100 KB when the grid wants two CTAs per SM resident at once (dispatch_mode).
template <int CW, int TN, int MT, bool ZEROS>
int pick_stages(int nstages_cta, bool two_per_sm, int requested) {
  using S = Shape<CW, TN, MT, ZEROS>;
  const int budget = requested > 0 ? kSmemMax : (two_per_sm ? 100 * 1024 : 200 * 1024);
  int st = (budget - kBarrierBytes) / S::kStage;
  if (requested > 0) st = std::min(st, requested);
  st = std::min(st, std::min(kMaxStages, nstages_cta));
  return std::max(st, 1);
}

template <int CW, int TN, int MT, bool ZEROS, bool SCALE_IN_A>
w4a16_status_t launch(Params p, int tiles, bool two_per_sm, int requested_stages, cudaStream_t stream) {
  static_assert(SCALE_IN_A || !ZEROS, "zero points are applied to the weights before the mma");
  auto kernel = decode_kernel<CW, TN, MT, ZEROS, SCALE_IN_A>;
  const int nstages_cta = ((p.nch + p.split - 1) / p.split + 1) / 2;
  p.stages = pick_stages<CW, TN, MT, ZEROS>(nstages_cta, two_per_sm, requested_stages);
  const int smem = smem_for_stages<CW, TN, MT, ZEROS>(p.stages);

  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    set_error_message("decode_gemm: cudaGetDevice failed: %s", cudaGetErrorString(err));
    return W4A16_CUDA_ERROR;
  }
  constexpr int kMaxDevices = 64;
  static std::once_flag once[kMaxDevices];
  static cudaError_t attr_err[kMaxDevices];
  if (device >= kMaxDevices) {
    set_error_message("decode_gemm: device ordinal %d out of range", device);
    return W4A16_CUDA_ERROR;
  }
  std::call_once(once[device], [&] {
    attr_err[device] = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemMax);
  });
  if (attr_err[device] != cudaSuccess) {
    set_error_message("decode_gemm: cudaFuncSetAttribute(%d bytes of shared memory) failed: %s", kSmemMax,
                      cudaGetErrorString(attr_err[device]));
    return W4A16_CUDA_ERROR;
  }

  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(p.split), static_cast<unsigned>(tiles), 1);
  cfg.blockDim = dim3(Shape<CW, TN, MT, ZEROS>::kThreads, 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attrs[2];
  int nattrs = 0;
  if (p.split > 1) {
    attrs[nattrs].id = cudaLaunchAttributeClusterDimension;
    attrs[nattrs].val.clusterDim.x = static_cast<unsigned>(p.split);
    attrs[nattrs].val.clusterDim.y = 1;
    attrs[nattrs].val.clusterDim.z = 1;
    ++nattrs;
  }
  if (p.pdl) {
    attrs[nattrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[nattrs].val.programmaticStreamSerializationAllowed = 1;
    ++nattrs;
  }
  cfg.attrs = attrs;
  cfg.numAttrs = nattrs;
  err = cudaLaunchKernelEx(&cfg, kernel, p);
  if (err != cudaSuccess) {
    set_error_message("decode_gemm: launch of warps=%d tile_nb=%d m_tiles=%d split=%d grid=(%d,%d) smem=%d failed: %s",
                      CW, TN, MT, p.split, p.split, tiles, smem, cudaGetErrorString(err));
    return W4A16_CUDA_ERROR;
  }
  return W4A16_OK;
}

// Grids of more than 3/4 of the SMs are sized for two CTAs per SM (decode_select_config; clusters fragment the GPCs
// at one CTA per SM). Such a grid takes the kernel flavour that fits two per SM, and a ring of half the size.
template <int CW, int TN, int MT>
w4a16_status_t dispatch_mode(const Params& p, int tiles, int sm, int stages, bool zeros, cudaStream_t stream) {
  const bool wants_two_per_sm = static_cast<long long>(tiles) * p.split > (3 * sm) / 4;
  if (zeros)
    return launch<CW, TN, MT, true, true>(p, tiles, wants_two_per_sm && two_per_sm_kernel<CW, TN, MT, true>(), stages,
                                          stream);
  if constexpr (!two_per_sm_kernel<CW, TN, MT, false>() && two_per_sm_kernel<CW, TN, MT, true>()) {
    // Scales in fp16 on the weights fit two per SM. H200, m = 16: 70B gate_up 97.0 -> 84.6 us (split 1 -> 2),
    // 8B gate_up 28.2 -> 26.7, 70B qkv 27.8 -> 26.7; one CTA per SM it is 4% slower (8192x28672: 60.3 vs 62.7),
    // so those grids keep the exact per-group sums.
    if (wants_two_per_sm) return launch<CW, TN, MT, false, true>(p, tiles, true, stages, stream);
  }
  return launch<CW, TN, MT, false, false>(p, tiles, wants_two_per_sm && two_per_sm_kernel<CW, TN, MT, false>(), stages,
                                          stream);
}

// (consumer warps, tile_nb) pairs compiled. Measured on H100 (scripts/decode_dev, 2026-11-25): 16 consumer warps
// of one n-block each and 64-block tiles were never better than 8 warps of two or four blocks. m > 16 loses to
// the CUTLASS tiles: token tiles of 32 and 64 (H200, 2026-12-01, benchmarks/NOTES.md) took 1.01-1.49x the CUTLASS
// time at m = 32 and 1.5-2.9x at m = 64, so this build serves m <= 16 with 8 consumer warps.
struct Variant {
  int warps, tile_nb;
};
constexpr Variant kVariants[] = {{8, 16}, {8, 32}};

bool config_valid(const DecodeConfig& c, long long m) {
  if (m < 1 || m > kDecodeMaxM) return false;
  for (const Variant& v : kVariants)
    if (v.warps == c.warps && v.tile_nb == c.tile_nb) return true;
  return false;
}

template <int CW, int TN>
w4a16_status_t dispatch_m(const Params& p, int tiles, int sm, int stages, bool zeros, cudaStream_t stream) {
  static_assert(kDecodeMaxM == 16, "token tiles of 8 and 16");
  if (p.m <= 8) return dispatch_mode<CW, TN, 1>(p, tiles, sm, stages, zeros, stream);
  return dispatch_mode<CW, TN, 2>(p, tiles, sm, stages, zeros, stream);
}

w4a16_status_t dispatch(const DecodeConfig& c, const Params& p, int tiles, int sm, bool zeros,
                        cudaStream_t stream) {
  if (c.tile_nb == 16) return dispatch_m<8, 16>(p, tiles, sm, c.stages, zeros, stream);
  return dispatch_m<8, 32>(p, tiles, sm, c.stages, zeros, stream);
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

}  // namespace decode_detail

bool decode_supports(const w4a16_gemm_args_t& a) {
  using decode_detail::aligned16;
  if (a.m < 1 || a.m > kDecodeMaxM || a.n < 8 || a.n % 8 || a.k < 64 || a.k % 64) return false;
  if (a.n > (1ll << 30) || a.k > (1ll << 30)) return false;
  if (!(a.group_size == 64 || a.group_size == 128 || a.group_size == a.k) || a.k % a.group_size) return false;
  if (!a.x || !a.packed_weight || !a.scales || !a.out) return false;
  if (!aligned16(a.x) || !aligned16(a.packed_weight) || !aligned16(a.scales) || !aligned16(a.out)) return false;
  if (a.zeros && !aligned16(a.zeros)) return false;
  if (a.ldx < a.k || a.ldx % 8 || a.ldo < a.n || a.ldo % 8) return false;
  return true;
}

size_t decode_workspace_size(const w4a16_gemm_args_t&, int) { return 0; }

bool decode_config_valid(const DecodeConfig& cfg, long long m) { return decode_detail::config_valid(cfg, m); }

DecodeConfig decode_select_config(const w4a16_gemm_args_t& a, int sm_count) {
  // Fitted to sweeps of scripts/decode_dev (`decode_test narrow` and `bench`; 8 Llama shapes, m = 1 and 16; H100
  // 2026-11-25, H200 2026-12-01 after the register cap made two CTAs per SM possible):
  //  - K <= 8192: grids sized for two CTAs per SM (dispatch_mode picks a kernel flavour that fits them): layers
  //    of <= 16 32-block tiles (N <= 8192) take 16-block tiles and twice the CTAs (4096x4096 m = 1 6.2 vs 7.1 us,
  //    6144x4096 7.6 vs 8.4, 8192x8192 15.2 vs 16.3, m = 16 10.1 vs 11.0 on 4096x4096), split K up to 2 x SMs
  //    CTAs in clusters of <= 4 and 1.5 x SMs in larger ones (256 CTAs of 8-CTA clusters ran in two waves:
  //    8192x8192 m = 1 19.5 us at 16/8 vs 15.0 at 16/6); 10240x8192 m = 1 at 32/8 (160 CTAs) 17.5 vs 20.4 at 32/4,
  //    m = 16 26.7 vs 27.8; 57344x8192 m = 16 at 32/2 84.6 vs 97.0 at 32/1.
  //  - K > 8192: deep rings at one CTA per SM stream better (8192x28672 m = 16: 59.9 us at 32/6 vs 64.4 at 16/6,
  //    m = 1 43.4 vs 51.0 at 32/8 with two-per-SM rings): 32-block tiles (16-block ones only when 32-block ones
  //    cannot give a quarter of the SMs work even at split 8), at most one CTA per SM and at most 3/4 of the SMs
  //    in clusters of >= 4 (GPC fragmentation left 128-CTA grids of 4- and 8-CTA clusters in two waves); m <= 8
  //    layers of >= 40 tiles two CTAs per SM.
  const long long nbp = (a.n + 15) / 16;
  const long long nch = a.k / 64;
  if (sm_count <= 0) sm_count = 132;
  const int max_split = static_cast<int>(std::min<long long>(decode_detail::kMaxSplit, nch));
  const bool short_k = nch <= 128;
  int tn = 32;
  if (short_k ? (nbp + 31) / 32 <= 16 : (nbp + 31) / 32 * max_split < sm_count * 3 / 8) tn = 16;
  const long long tiles = (nbp + tn - 1) / tn;
  // (every kernel has a flavour that fits two per SM: dispatch_mode)
  const bool two_per_sm = short_k || (a.m <= 8 && tiles >= 40);
  int split = 1;
  for (int s = 2; s <= max_split; ++s) {
    const long long units = tiles * s;
    const long long limit = two_per_sm ? (s >= 5 ? 3ll * sm_count / 2 : 2ll * sm_count)
                                       : (s >= 4 ? 3ll * sm_count / 4 : sm_count);
    if (units <= limit) split = s;
  }
  // PDL (w4a16.h): 2 = request this CTA's first weight stages before waiting for the previous kernel (the weights
  // are constants), 1 = wait first, 0 = plain launch.
  const int pdl = (a.flags & W4A16_FLAG_NO_PDL) ? 0 : (a.flags & W4A16_FLAG_NO_WEIGHT_PREFETCH) ? 1 : 2;
  return DecodeConfig{8, tn, split, 0, pdl};
}

w4a16_status_t decode_gemm_with_config(const w4a16_gemm_args_t& a, const DecodeConfig& c, int sm_count,
                                       cudaStream_t stream) {
  if (!decode_supports(a)) {
    set_error_message("decode_gemm: problem not supported (m=%lld n=%lld k=%lld group=%lld)", (long long)a.m,
                      (long long)a.n, (long long)a.k, (long long)a.group_size);
    return W4A16_INVALID_SHAPE;
  }
  const long long nch = a.k / 64;
  if (c.split < 1 || c.split > decode_detail::kMaxSplit || c.split > nch ||
      !decode_detail::config_valid(c, a.m) || c.pdl < 0 || c.pdl > 2 || c.stages < 0) {
    set_error_message("decode_gemm: bad config warps=%d tile_nb=%d split=%d stages=%d pdl=%d for m=%lld", c.warps,
                      c.tile_nb, c.split, c.stages, c.pdl, (long long)a.m);
    return W4A16_INVALID_VALUE;
  }
  if (sm_count <= 0) sm_count = 132;
  decode_detail::Params p;
  p.x = static_cast<const __half*>(a.x);
  p.w = static_cast<const uint8_t*>(a.packed_weight);
  p.s = static_cast<const __half*>(a.scales);
  p.z = static_cast<const __half*>(a.zeros);
  p.bias = static_cast<const __half*>(a.bias);
  p.out = static_cast<__half*>(a.out);
  p.ldx = a.ldx;
  p.ldo = a.ldo;
  p.m = static_cast<int>(a.m);
  p.n = static_cast<int>(a.n);
  p.nbp = static_cast<int>((a.n + 15) / 16);
  p.nch = static_cast<int>(nch);
  // in 64-column chunks
  p.group_shift = a.group_size == a.k ? 31 : a.group_size == 128 ? 1 : 0;
  p.split = c.split;
  p.stages = 0;
  p.pdl = c.pdl;
  p.alpha = a.alpha;
  const int tiles = (p.nbp + c.tile_nb - 1) / c.tile_nb;
  if (tiles > 65535) {
    set_error_message("decode_gemm: n=%lld needs %d tiles (> 65535)", (long long)a.n, tiles);
    return W4A16_INVALID_SHAPE;
  }
  return decode_detail::dispatch(c, p, tiles, sm_count, a.zeros != nullptr, stream);
}

w4a16_status_t decode_gemm(const w4a16_gemm_args_t& a, int sm_count, void* /*workspace*/, cudaStream_t stream) {
  return decode_gemm_with_config(a, decode_select_config(a, sm_count), sm_count, stream);
}

}  // namespace w4a16
