// Decode path of w4a16-gemm: see decode_gemm.cuh.
//
// Work split. The packed weights are 16x16 blocks (weight_layout.hpp), block (nb, kb) at byte
// (nb + kb * NBp) * 128, NBp = n_padded / 16. A CTA owns TN consecutive n-blocks (a "tile", TN*16 output
// features) and 1/split of K in 64-column chunks; the split CTAs of a tile form one thread-block cluster.
// Pipeline. K is walked in stages of two chunks (128 columns). A producer warp copies each stage into a
// shared-memory ring with bulk async copies (cp.async.bulk, the TMA engine, completing on an mbarrier): per
// k-block one contiguous TN*128-byte run of weights (the warpgroup-MMA tiles of >= 32 tokens: the stage's 8 runs
// as one 3-D TMA box, Shape::kStageBox), per token its 128 columns of x (the warpgroup-MMA kernels: two 2-D TMA
// boxes of x, below), and the scale (zero) rows of the stage's two chunks. The ring takes ~200 KB of
// shared memory (one CTA per SM) or ~100 KB (when the grid needs two CTAs per SM resident), so a short CTA
// requests all its bytes at once.
// Math, m <= 16 (mma.sync). 8 consumer warps each own TN/8 n-blocks. Per block a lane reads its 32-bit A fragment
// (LDS.32, conflict-free), turns its 8 nibbles into 4 half2 with lop3 + one HADD/HFMA each and issues one
// mma.m16n8k16 per 8 tokens, x being the B operand (ldmatrix from a padded, conflict-free x tile).
// Scale-only weights: the mma sums integer weights; at the end of each scale group the fp32 sums are scaled per
// row (acc += s * group_sum); at m <= 8, warps of >= 4 n-blocks take them as fp16 subnormals, one LOP3 a register
// (dequant_subnormal), and one more warp sums x per chunk and token for the offset those carry. Zero points, and
// the m > 8 kernel in grids of two CTAs per SM (registers): w = q*s (+ z) is formed in fp16 (HMUL2 / HFMA2) before
// the mma.
// Math, m > 16 (and 9-16 on small layers, DecodeConfig::wgmma). The same A fragments are the register operand of
// wgmma.m64nNk16 (N = the token tile, 16, 32, 64 or 128; the packed layout is that operand's, weight_layout.hpp):
// each of the two consumer warpgroups owns TN/8 groups of 4 n-blocks, dequantizes a whole stage (w = q*s (+ z) in
// fp16) and issues one batch of wgmma on x, which the producer copies with a 2-D TMA tensor map as the
// 128-byte-swizzled shared-memory B operand (grid z: token tiles). One wait per stage: RS wgmma cannot overlap the
// next stage's dequantization in the same warpgroup (ptxas serializes a batch whose register operands are written
// while it runs), so the other warpgroup, and a second CTA per SM where registers allow, keep the tensor cores
// busy; 16-block tiles of <= 32 tokens wait per chunk instead, which halves their A fragments and lets two CTAs
// share an SM (CHUNK_BATCH).
// Reduction: the consumer warps' fp32 accumulators go to shared memory; after a cluster barrier, CTA r of the
// cluster sums slice r of the tile's outputs over the cluster's CTAs in rank order through distributed shared
// memory, applies alpha and bias and writes fp16. Same inputs, same config -> same bits. With a global fix-up
// (DecodeConfig::global_fixup) the CTAs publish their partials to the workspace instead and the tile's last CTA
// sums them in the same order: the same bits, without a cluster.
#include "decode_gemm.cuh"

#include <cooperative_groups.h>
#include <cuda.h>
#include <cuda_fp16.h>
#include <cudaTypedefs.h>

#include "cute/arch/mma_sm90.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <utility>

#include "kernel_registry.h"

namespace w4a16 {
namespace decode_detail {

namespace cg = cooperative_groups;

constexpr int kChunkKb = 4;       // a "chunk" = 64 columns of k = 4 k-blocks; splits and scale groups align to it
constexpr int kStageKb = 8;       // k-blocks per pipeline stage (two chunks, k = 128)
constexpr int kXRowBytes = 272;   // 128 halves of one token + 16 bytes of padding (conflict-free ldmatrix)
constexpr int kMaxSplit = 8;      // portable cluster size
constexpr int kMaxFixupSplit = 16;  // split-K through the workspace: no cluster, so not bound by its size
constexpr int kMaxStages = 48;
constexpr int kBarrierBytes = 1024;          // 2 * kMaxStages mbarriers, then the stage ring (warpgroup-MMA
                                             // kernels: from the next 1024-byte boundary)
constexpr int kSmemMax = 220 * 1024;         // dynamic shared memory limit we ask for
constexpr int kOnePerSmRing = 200 * 1024;    // ring budgets (pick_stages) for one and two CTAs per SM
constexpr int kTwoPerSmRing = 100 * 1024;
constexpr int kMaxDevices = 64;              // per-device one-time setup (attributes, cluster fit)

// Grids of more than 3/4 of the SMs get rings sized for two CTAs per SM (and the kernel flavour that fits two);
// smaller ones one CTA per SM, since clusters fragment the GPCs at one CTA per SM. dispatch_mode and launch_wg
// launch by it, decode_select_config sizes grids by it.
inline bool wants_two_per_sm(long long ctas, int sm_count) { return ctas > 3ll * sm_count / 4; }

struct Params {
  CUtensorMap x_map;  // x as a 2-D tensor (k, m) in boxes of 64 columns x one token tile, 128-byte swizzled
                      // (warpgroup-MMA kernels only; the kernel parameter is __grid_constant__ so TMA can read it)
  CUtensorMap w_map;  // the packed weights as a 3-D tensor (16 eight-byte words, n-block, k-block), one box a stage
                      // (Shape::kStageBox kernels only)
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
  // Split-K through global memory (DecodeConfig::global_fixup) when non-null: one counter per (token tile, tile),
  // zero between calls, and split x the CTA's partials per (token tile, tile); no cluster.
  unsigned* fixup_counters;
  float* fixup_partials;
};

template <int CW, int TN, int MT, bool ZEROS, bool WG = (MT >= 4)>
struct Shape {
  static constexpr int kThreads = (CW + 1) * 32;               // CW consumer warps + one producer warp
  static constexpr int WN = TN / CW;                           // n-blocks per consumer warp
  static_assert(WN >= 1 && WN * CW == TN, "bad tile");
  // Token tiles of >= 32 (MT >= 4), and of 16 where the config asks (DecodeConfig::wgmma), take the warpgroup
  // MMA: each consumer warpgroup issues WN wgmma.m64nNk16 per k-block (N = 8 MT tokens), its 4 warps holding the
  // 4 n-blocks of each as register A fragments; x is the shared-memory B operand, 128-byte swizzled, one
  // 1024-byte-aligned atom of 64 columns per chunk.
  static constexpr bool kWG = WG;
  static_assert(!kWG || CW == 8, "two consumer warpgroups");
  static constexpr int kTokens = 8 * MT;
  // A stage's weights in one tensor-map copy (kStageKb k-blocks x TN n-blocks x 128 bytes, the ring's layout)
  // instead of one bulk copy per k-block: the warpgroup-MMA tiles of >= 32 tokens. H200, decode_test (session 23):
  // `mid` M = 64 8B qkv 15.44 -> 13.50 us, 8B o 12.79 -> 11.68, 70B gate_up 140.3 -> 130.8, 70B down 68.6 -> 65.8,
  // M = 32 -1.5 to -5%; every m <= 16 kernel with it lost 1-6% at M = 1-4 (70B gate_up 60.6 -> 64.1) and was mixed
  // at M = 16 (8B qkv -6%, 8B o +6%).
  static constexpr bool kStageBox = kWG && MT >= 4;
  static constexpr int NACC = WN * MT <= 2 ? 2 : 1;            // accumulator sets (two: shorter mma chains)
  static constexpr int kW = TN * kStageKb * 128;               // weight bytes per stage
  static constexpr int kX = kWG ? 2 * kTokens * 128 : kTokens * kXRowBytes;  // x bytes per stage
  static constexpr int kSRow = TN * 16 * 2;                    // one scale (zero) row of the tile
  static constexpr int kStageRaw = kW + kX + (ZEROS ? 4 : 2) * kSRow;  // scale rows of both chunks (+ zero rows)
  static constexpr int kStage = kWG ? (kStageRaw + 1023) / 1024 * 1024 : kStageRaw;  // swizzle atoms stay aligned
  static constexpr int kRowPitch = TN * 16 + 4;                // floats; 4 mod 32: conflict-free partial stores
  static constexpr int kRed = kTokens * kRowPitch * 4;         // partial-sum buffer (aliases the ring)
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

// 2-D tensor copy (TMA) global -> this CTA's shared memory: box at (column c, row r) of the tensor map, completing
// its bytes on the mbarrier (rows past the tensor's end are zero-filled and still counted).
__device__ __forceinline__ void tma_2d_g2s(uint32_t dst, const CUtensorMap* map, int c, int r, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c), "r"(r), "r"(bar)
      : "memory");
}

// 3-D tensor copy (TMA) with an L2 cache hint: the box at (c0, c1, c2) of the tensor map, completing its bytes on
// the mbarrier (elements past the tensor's end are zero-filled and still counted).
__device__ __forceinline__ void tma_3d_g2s_hint(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                                uint32_t bar, uint64_t pol) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "l"(pol)
      : "memory");
}

// wgmma shared-memory descriptor of a K-major operand in 128-byte-swizzled atoms (8 rows x 128 bytes): leading
// byte offset unused (1), stride byte offset 1024 between groups of 8 rows, layout type 1 = SWIZZLE_128B.
__device__ __forceinline__ uint64_t sw128_kmajor_desc(uint32_t smem_byte_addr) {
  return static_cast<uint64_t>((smem_byte_addr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

// D[64 x NT] += A[64 x 16] (registers) * B[16 x NT] (shared memory, K-major) for one warpgroup.
template <int NT>
using WgmmaOp = decltype(cute::SM90::GMMA::rs_op_selector<cute::half_t, cute::half_t, float,
                                                          cute::Shape<cute::_64, cute::Int<NT>, cute::_16>>());
template <int NT, size_t... I>
__device__ __forceinline__ void wgmma_rs_impl(float (&d)[NT / 2], const uint32_t (&a)[4], uint64_t desc,
                                              std::index_sequence<I...>) {
  WgmmaOp<NT>::fma(a[0], a[1], a[2], a[3], desc, d[I]..., cute::SM90::GMMA::ScaleOut::One);
}
template <int NT>
__device__ __forceinline__ void wgmma_rs(float (&d)[NT / 2], const uint32_t (&a)[4], uint64_t desc) {
  wgmma_rs_impl<NT>(d, a, desc, std::make_index_sequence<NT / 2>{});
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

// One packed word -> its 4 A-fragment registers as exact fp16 subnormals, one LOP3 each and no fp16 arithmetic:
// (q + 8) * 2^-24 in rows g (registers 0, 2: the 0x000F000F nibbles, xor 8) and 16 (q + 8) * 2^-24 in rows g + 8
// (registers 1, 3: the 0x00F000F0 nibbles). The mma sums of these minus the offset, 8 * 2^-24 (kOffsetLo) or
// 8 * 2^-20 (kOffsetHi) times the sum of x over the same columns (the token-sum warp's), times 2^24 or 2^20, are the
// integer sums. The tensor cores take fp16 subnormals exactly, and the products, ~2^-24 |x|, are normal fp32.
__device__ __forceinline__ void dequant_subnormal(uint32_t w, uint32_t (&a)[4]) {
  const uint32_t w8 = w >> 8;
  a[0] = and_xor<0x000F000Fu, 0x00080008u>(w);
  a[1] = and_xor<0x00F000F0u, 0x00800080u>(w);
  a[2] = and_xor<0x000F000Fu, 0x00080008u>(w8);
  a[3] = and_xor<0x00F000F0u, 0x00800080u>(w8);
}
constexpr float kSubnormalLo = 16777216.f, kSubnormalHi = 1048576.f;  // 2^24 (rows g), 2^20 (rows g + 8)
constexpr float kOffsetLo = 1.f / 2097152.f, kOffsetHi = 1.f / 131072.f;  // 8 * 2^-24, 8 * 2^-20: the offset 8
                                                                          // at each row's power of two

// The scale (and zero point) of A-fragment rows `row` and `row + 8`, broadcast to half2, from a stage's scale row
// (zero row TN*16 halves after it).
template <bool ZEROS, int TN>
__device__ __forceinline__ void row_scales(const __half* srow, int row, half2& sc_lo, half2& sc_hi, half2& zr_lo,
                                           half2& zr_hi) {
  sc_lo = __half2half2(srow[row]);
  sc_hi = __half2half2(srow[row + 8]);
  if (ZEROS) {
    zr_lo = __half2half2(srow[2 * TN * 16 + row]);
    zr_hi = __half2half2(srow[2 * TN * 16 + row + 8]);
  }
}

// One packed word -> its 4 A-fragment registers as w = q*s (+ z) in fp16 (registers 0, 2: row g; 1, 3: row g + 8).
template <bool ZEROS>
__device__ __forceinline__ void dequant_scaled(uint32_t word, half2 sc_lo, half2 sc_hi, half2 zr_lo, half2 zr_hi,
                                               uint32_t (&a)[4]) {
  half2 q[4];
  dequant_int(word, q);
  if (ZEROS) {
    a[0] = as_u32(__hfma2(q[0], sc_lo, zr_lo));
    a[1] = as_u32(__hfma2(q[1], sc_hi, zr_hi));
    a[2] = as_u32(__hfma2(q[2], sc_lo, zr_lo));
    a[3] = as_u32(__hfma2(q[3], sc_hi, zr_hi));
  } else {
    a[0] = as_u32(__hmul2(q[0], sc_lo));
    a[1] = as_u32(__hmul2(q[1], sc_hi));
    a[2] = as_u32(__hmul2(q[2], sc_lo));
    a[3] = as_u32(__hmul2(q[3], sc_hi));
  }
}

// The consumers' position in the ring: slot, and the parity of its full barrier's current phase.
struct RingCursor {
  int slot = 0;
  uint32_t phase = 0;
  __device__ __forceinline__ void advance(int nstg) {
    if (++slot == nstg) {
      slot = 0;
      phase ^= 1u;
    }
  }
};

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

// Arrival on a split-K counter: increments it, or wraps it to 0 when it holds `last` (the arrival of the tile's last
// CTA leaves it at 0 for the next call); acquire-release at GPU scope, so the caller's CTA, past a barrier, sees
// the partials every earlier arrival published.
__device__ __forceinline__ unsigned arrive_wrapping(unsigned* counter, unsigned last) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.inc.u32 %0, [%1], %2;\n" : "=r"(old) : "l"(counter), "r"(last) : "memory");
  return old;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                            uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// Eight outputs of one token from feature n on: alpha * sum + bias, rounded to fp16, one 16-byte store.
__device__ __forceinline__ void store_outputs(const Params& p, const float (&sum)[8], int token, int n) {
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
  *reinterpret_cast<uint4*>(p.out + static_cast<long long>(token) * p.ldo + n) =
      make_uint4(packed[0], packed[1], packed[2], packed[3]);
}

// The 8 outputs of one item: the split's partials summed in rank order, so both fix-ups (the cluster's and the
// workspace's) give the same bits. Callers request every partial before calling: each load is a round trip of
// hundreds of cycles (L2 or a peer's shared memory), which a load-add loop would pay once per rank.
template <int R>
__device__ __forceinline__ void add_in_rank_order(int count, const float4 (&part_lo)[R], const float4 (&part_hi)[R],
                                                  float (&sum)[8]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r < count) {
      const float4 lo = part_lo[r], hi = part_hi[r];
      sum[0] += lo.x; sum[1] += lo.y; sum[2] += lo.z; sum[3] += lo.w;
      sum[4] += hi.x; sum[5] += hi.y; sum[6] += hi.z; sum[7] += hi.w;
    }
  }
}
template <int R>
__device__ __forceinline__ void sum_in_rank_order(int split, const float4 (&part_lo)[R], const float4 (&part_hi)[R],
                                                  float (&sum)[8]) {
#pragma unroll
  for (int e = 0; e < 8; ++e) sum[e] = 0.f;
  add_in_rank_order(split, part_lo, part_hi, sum);
}

// The kernels that may split K past a cluster's 8 through the workspace (decode_select_config, config_valid): the
// 4-warp mma.sync tiles. (16-block warpgroup-MMA tiles of 16 / 32 tokens split 10-16 lost to every grid of split
// <= 8 on the narrow layers: 4096x14336 m = 16 16/14g 21.2 us vs 8/8g 17.5, 6144x4096 16/11g 14.3 vs 8/4 10.1;
// H200 2026-12-03, benchmarks/NOTES.md session 19.)
__host__ __device__ constexpr bool wide_split_kernel(int consumer_warps, bool warpgroup_mma) {
  return !warpgroup_mma && consumer_warps == 4;
}

// Splits past a cluster's 8 (kMaxFixupSplit, wide_split_kernel): the tile's last CTA sums the partials in batches
// of 8 ranks, in rank order as sum_in_rank_order does. A function of its own, called by those kernels only: as a
// branch of fixup_through_workspace, or in every kernel, its registers went into the callers (168 instead of 103;
// stack frames in the 8-warp kernels) and cost 0.2-0.3 us a call (H200 2026-12-03).
template <int TN, int TOKENS, int THREADS>
__device__ __noinline__ void sum_wide_split(const Params& p, const float* tile_partials, int n0, int m0, int m_rows) {
  constexpr int kSlab = TOKENS * TN * 16;
  const int items = 2 * TN * m_rows;
  for (int it = threadIdx.x; it < items; it += THREADS) {
    const int mtok = it / (2 * TN), c8 = it % (2 * TN);
    const int n = n0 + c8 * 8;
    if (n >= p.n) continue;
    const float4* src = reinterpret_cast<const float4*>(tile_partials + mtok * TN * 16 + c8 * 8);
    float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int base = 0; base < p.split; base += kMaxSplit) {
      float4 part_lo[kMaxSplit], part_hi[kMaxSplit];
#pragma unroll
      for (int r = 0; r < kMaxSplit; ++r) {
        if (base + r < p.split) {
          part_lo[r] = __ldcg(src + (base + r) * (kSlab / 4));
          part_hi[r] = __ldcg(src + (base + r) * (kSlab / 4) + 1);
        }
      }
      add_in_rank_order(p.split - base, part_lo, part_hi, sum);  // (onto the running sum: the same order)
    }
    store_outputs(p, sum, m0 + mtok, n);
  }
}

// The workspace fix-up of splits of at most R ranks (R = 2, 4) on the warpgroup-MMA tiles of 32+ tokens: the
// tile's last CTA requests U items a thread at once (U x R x 2 float4, the 64 registers one item of split 8 takes),
// so a thread's items take U times fewer dependent L2 round trips than one item a round. Same items, same rank
// order and sum (sum_in_rank_order): the same bits as the loop of fixup_through_workspace. 70B o / qkv / down at
// m = 32 / 64 (split 3-4): 1.2-2.9% faster (H200 2026-12-03, benchmarks/NOTES.md session 21). Only for those tiles:
// in every kernel's fix-up it cost the m <= 16 kernels 0.4-0.8 us a call (4096x4096, 8/8g). Inlined: as a call of
// its own it gained nothing.
template <int U, int R, int TN, int TOKENS, int THREADS>
__device__ __forceinline__ void sum_few_ranks(const Params& p, const float* tile_partials, int n0, int m0,
                                              int m_rows) {
  constexpr int kSlab = TOKENS * TN * 16;
  const int items = 2 * TN * m_rows;
  for (int base = threadIdx.x; base < items; base += U * THREADS) {
    float4 part_lo[U][R], part_hi[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int it = base + u * THREADS;
      const int mtok = it / (2 * TN), c8 = it % (2 * TN);
      if (it < items && n0 + c8 * 8 < p.n) {
        const float4* src = reinterpret_cast<const float4*>(tile_partials + mtok * TN * 16 + c8 * 8);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          if (r < p.split) {
            part_lo[u][r] = __ldcg(src + r * (kSlab / 4));
            part_hi[u][r] = __ldcg(src + r * (kSlab / 4) + 1);
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int it = base + u * THREADS;
      const int mtok = it / (2 * TN), c8 = it % (2 * TN);
      const int n = n0 + c8 * 8;
      if (it < items && n < p.n) {
        float sum[8];
        sum_in_rank_order(p.split, part_lo[u], part_hi[u], sum);
        store_outputs(p, sum, m0 + mtok, n);
      }
    }
  }
}

// Split-K through global memory (DecodeConfig::global_fixup), after the CTA's partials are in shared memory (red):
// every CTA of the tile publishes them to the workspace and arrives on the tile's counter; the last to arrive sums
// them in rank order, as the cluster path of decode_kernel does (the same bits), and stores the tile. No cluster:
// the grid is sized by the SMs, not by how many clusters fit at once (decode_select_config). Counters start at zero
// and the last arrival leaves them there (the workspace contract, w4a16.h). Not inlined: inlined, its addresses
// were computed before the K loop and held through it, which spilled a 96-register kernel.
// WIDE_SPLIT: the kernel may run splits past a cluster's 8 (sum_wide_split; wide_split_kernel).
template <int TN, int TOKENS, int ROW_PITCH, int THREADS, bool WIDE_SPLIT>
__device__ __noinline__ void fixup_through_workspace(const Params& p, const float* red, int n0, int m0, int m_rows) {
  if (p.pdl) asm volatile("griddepcontrol.wait;\n" ::: "memory");  // the workspace may be the predecessor's
  constexpr int kSlab = TOKENS * TN * 16;                        // floats of one CTA's partials
  const int items = 2 * TN * m_rows;
  const int tile_id = blockIdx.z * gridDim.y + blockIdx.y;
  const int rank = blockIdx.x, tid = threadIdx.x;
  const float* tile_partials = p.fixup_partials + static_cast<long long>(tile_id) * p.split * kSlab;
  float* mine = p.fixup_partials + (static_cast<long long>(tile_id) * p.split + rank) * kSlab;
  for (int it = tid; it < items; it += THREADS) {
    const int mtok = it / (2 * TN), c8 = it % (2 * TN);
    const float4* src = reinterpret_cast<const float4*>(red + mtok * ROW_PITCH + c8 * 8);
    float4* dst = reinterpret_cast<float4*>(mine + mtok * TN * 16 + c8 * 8);
    __stcg(dst, src[0]);
    __stcg(dst + 1, src[1]);
  }
  __syncthreads();  // (the arrival below releases what every thread stored: barrier, then GPU-scope release)
  int last = 0;
  const unsigned last_arrival = p.split - 1;
  if (tid == 0) last = arrive_wrapping(p.fixup_counters + tile_id, last_arrival) == last_arrival;
  if (!__syncthreads_or(last)) return;
  if constexpr (WIDE_SPLIT) {
    if (p.split > kMaxSplit) {
      sum_wide_split<TN, TOKENS, THREADS>(p, tile_partials, n0, m0, m_rows);
      return;
    }
  }
  if constexpr (TOKENS >= 32) {
    if (p.split <= 2) {
      sum_few_ranks<4, 2, TN, TOKENS, THREADS>(p, tile_partials, n0, m0, m_rows);
      return;
    }
    if (p.split <= 4) {
      sum_few_ranks<2, 4, TN, TOKENS, THREADS>(p, tile_partials, n0, m0, m_rows);
      return;
    }
  }
  // sum_few_ranks<1, kMaxSplit> computes the same; called here instead of this loop it adds 8-32 instructions to
  // every m <= 16 kernel (cuobjdump, 2026-12-03), and such changes to the fix-up cost those kernels 0.2-0.8 us a call
  // (benchmarks/NOTES.md, sessions 19 and 21).
  for (int it = tid; it < items; it += THREADS) {
    const int mtok = it / (2 * TN), c8 = it % (2 * TN);
    const int n = n0 + c8 * 8;
    if (n >= p.n) continue;
    // Through L2 (ld.cg): this SM's L1 may hold lines of an earlier call's partials.
    const float4* src = reinterpret_cast<const float4*>(tile_partials + mtok * TN * 16 + c8 * 8);
    float4 part_lo[kMaxSplit], part_hi[kMaxSplit];
#pragma unroll
    for (int r = 0; r < kMaxSplit; ++r) {
      if (r < p.split) {
        part_lo[r] = __ldcg(src + r * (kSlab / 4));
        part_hi[r] = __ldcg(src + r * (kSlab / 4) + 1);
      }
    }
    float sum[8];
    sum_in_rank_order(p.split, part_lo, part_hi, sum);
    store_outputs(p, sum, m0 + mtok, n);
  }
}

// ---- the kernel -----------------------------------------------------------------------------------------------

// The registers a thread may use when `ctas` CTAs of cw consumer warps + the producer share an SM: the register
// file is split over the four schedulers (16K registers each), so R <= 16384 / (32 x the most warps one scheduler
// gets), in steps of 8, and at most 168. Two CTAs of 9 warps: 5 warps on one scheduler, 96 registers; two CTAs of
// 5 warps, or one of 9: 3 warps, 168.
constexpr int registers_at(int ctas, int cw) {
  const int warps_per_scheduler = (ctas * (cw + 1) + 3) / 4;
  const int cap = 16384 / (32 * warps_per_scheduler) / 8 * 8;
  return cap < 168 ? cap : 168;
}
constexpr int kTwoPerSmRegisters = registers_at(2, 8);
static_assert(kTwoPerSmRegisters == 96 && registers_at(2, 4) == 168 && registers_at(1, 8) == 168, "residency");

// Register budget. decode_select_config sizes grids for two CTAs per SM where the kernel allows it. Unbounded, ptxas
// took 113 registers for the m <= 8 kernel of 8 consumer warps and those grids ran in two waves: 70B gate_up at
// m = 1 took 78 us instead of 62 (H200; ncu "Block Limit Registers 1"). What decides the fit is the fp32 sums a
// lane keeps: the m > 8 kernel of 32-block tiles keeps 64 (per-group sums of integer products plus the scaled
// total) and needed 127 registers (212 bytes of spills at 96), while 32 fit (92 registers when SCALE_IN_A drops
// the per-group sums). So a flavour of 8 consumer warps runs two per SM iff its lane keeps at most 32 sums. Two CTAs
// of 4 consumer warps allow 168 registers, and their m > 8 kernel keeping 64 sums takes 112, so it keeps the exact
// per-group sums at two per SM (H200, decode_test bench against scales in fp16: 70B qkv / o / down at m = 16
// 23.7 -> 23.1, 19.5 -> 19.0, 52.1 -> 50.1 us). The others run one CTA per SM, with up to 168 registers.
template <int CW, int TN, int MT, bool SCALE_IN_A>
constexpr int lane_sums() {
  using S = Shape<CW, TN, MT, false>;  // (zero points do not change the accumulators)
  return S::WN * MT * 4 * (SCALE_IN_A ? S::NACC : S::NACC + 1);
}
template <int CW, int TN, int MT, bool SCALE_IN_A, bool WG = (MT >= 4), bool CHUNK_BATCH = false>
constexpr bool two_per_sm_kernel() {
  using S = Shape<CW, TN, MT, false, WG>;
  // warpgroup-MMA kernels: a lane keeps WN x (tokens / 2) sums and the A fragments of a stage, 2 x 4 x 4 x WN (of
  // one chunk, 4 x 4 x WN, with CHUNK_BATCH).
  if constexpr (S::kWG) return S::WN * (S::kTokens / 2 + (CHUNK_BATCH ? 1 : 2) * kChunkKb * 4) <= 64;
  return lane_sums<CW, TN, MT, SCALE_IN_A>() <= (registers_at(2, CW) >= 168 ? 64 : 32);
}
// The cap that lets the kernel's residency happen.
// (The subnormal-weight kernels have one more warp, the token-sum warp.)
template <int CW, int TN, int MT, bool SCALE_IN_A, bool WG = (MT >= 4), bool CHUNK_BATCH = false,
          bool SUBNORMAL = false>
constexpr int register_cap() {
  return registers_at(two_per_sm_kernel<CW, TN, MT, SCALE_IN_A, WG, CHUNK_BATCH>() ? 2 : 1, CW + (SUBNORMAL ? 1 : 0));
}
static_assert(register_cap<8, 16, 1, false>() == kTwoPerSmRegisters, "two 9-warp CTAs per SM");
static_assert(register_cap<4, 16, 1, false>() == 168, "two 5-warp CTAs per SM");
static_assert(two_per_sm_kernel<4, 16, 2, false>() && !two_per_sm_kernel<8, 32, 2, false>(), "sums per lane");
static_assert(!two_per_sm_kernel<8, 16, 4, true>() && two_per_sm_kernel<8, 16, 4, true, true, true>() &&
                  !two_per_sm_kernel<8, 16, 8, true, true, true>(),
              "16-block warpgroup-MMA tiles pair up at <= 32 tokens in chunk batches");

// A lane's mma accumulators (n-blocks nb_first .., registers e = 0..3 each: rows g, g + 8, tokens t0 + 2 q4, + 1) as
// exact integer sums scaled per group, over chunks [c_begin, c_end), straight from global memory in fp32: the slow
// path of the subnormal-weight kernels when x holds an Inf or NaN. Not inlined, so that its registers stay out of
// the kernel's K loop.
__device__ __noinline__ void exact_lane_sums(const Params& p, const __half* x_tile, int nb_first, int nblocks, int lane,
                                             int m_rows, int t0, int c_begin, int c_end, float* out) {
  const int g = lane >> 2, q4 = lane & 3;
  for (int j = 0; j < nblocks; ++j) {
    const int nb = nb_first + j;
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >> 1) * 8, t = t0 + 2 * q4 + (e & 1), n = nb * 16 + row;
      float total = 0.f;
      if (n < p.n && t < m_rows) {
        const __half* xr = x_tile + static_cast<long long>(t) * p.ldx;
        for (int c = c_begin; c < c_end; ++c) {
          float sum = 0.f;
          for (int kb = c * kChunkKb; kb < (c + 1) * kChunkKb; ++kb)
            for (int l = 0; l < 4; ++l) {  // the words of lanes 4g .. 4g + 3 hold rows g and g + 8 of the k-block
              const uint32_t word = *reinterpret_cast<const uint32_t*>(
                  p.w + (static_cast<long long>(kb) * p.nbp + nb) * 128 + (4 * g + l) * 4);
              // nibble slots [v0, v2, v4, v6, v1, v3, v5, v7]: row g has v0, v1 (k = 2l, 2l + 1) and v4, v5
              // (k + 8), row g + 8 the next slot of each
              constexpr int kSlot[4] = {0, 4, 2, 6};
              for (int v = 0; v < 4; ++v) {
                const uint32_t nib = (word >> (4 * (kSlot[v] + (e >> 1)))) & 0xF;
                const int qv = static_cast<int>(nib) - static_cast<int>((nib & 8) << 1);
                const int k = kb * 16 + 2 * l + (v & 1) + (v >> 1) * 8;
                sum = fmaf(static_cast<float>(qv), __half2float(xr[k]), sum);
              }
            }
          total = fmaf(sum, __half2float(p.s[static_cast<long long>(c >> p.group_shift) * p.n + n]), total);
        }
      }
      out[4 * j + e] = total;
    }
  }
}

// Which flavours may take integer weights as fp16 subnormals (dequant_subnormal): warps of >= 4 n-blocks and one
// token tile. Fewer blocks a warp lose, with the offset from one more mma per k-block (H200, decode_test bench: 8B
// down at m = 1 +10% with one block a warp, 8B o +3% with two) and as much with it from the token-sum warp (8B down
// m = 1-4 +10-18%, 8B o +2%); two token tiles (m = 9-16) lose 0-2% (70B o m = 16 19.0 -> 19.4 us), measured with
// this predicate widened. (The kernel code keeps those paths, MT loops and exact_lane_sums' t0, but only MT == 1
// is instantiated; a token tile past the first would also need the token-sum warp to clamp rows at p.m - 1, as the
// consumers' x fragments do, instead of m_rows - 1.)
template <int CW, int TN, int MT, bool SCALE_IN_A, bool WG>
__host__ __device__ constexpr bool subnormal_weights() {
  return !WG && !SCALE_IN_A && MT == 1 && TN / CW >= 4;
}
// Threads of a kernel: the consumer warps, the producer warp and, with subnormal weights, the token-sum warp.
template <int CW, int TN, int MT, bool ZEROS, bool WG, bool SUBNORMAL>
__host__ __device__ constexpr int kernel_threads() {
  return Shape<CW, TN, MT, ZEROS, WG>::kThreads + (SUBNORMAL ? 32 : 0);
}
// Shared memory of the token sums (subnormal weights), after the ring and the partials that alias it: per ring slot
// an mbarrier and the fp32 sums of x over each of the stage's two chunks, per token of the tile.
template <int MT, bool SUBNORMAL>
__host__ __device__ constexpr int token_sum_bytes_per_slot() {
  return SUBNORMAL ? 8 + 2 * 8 * MT * 4 : 0;
}
// Whether K is split among a cluster's CTAs in whole stages (an even c_begin) rather than chunks.
template <bool WG, bool SUBNORMAL>
__host__ __device__ constexpr bool splits_in_stages() {
  return WG || SUBNORMAL;
}

// SCALE_IN_A: the dequantized weights are scaled (and shifted by the zero point) in fp16 before the mma, so the
// accumulators hold final sums; otherwise the mma sums integer weights and each scale group's fp32 sum is scaled
// (exact products, two accumulator sets). Zero points always take the first form, and so do the warpgroup-MMA
// kernels. CHUNK_BATCH (warpgroup MMA): one wgmma batch and wait per chunk instead of per stage, so that a lane
// holds one chunk's A fragments and 16-block tiles of <= 32 tokens fit two CTAs per SM (launch_wg).
// SUBNORMAL: integer weights as fp16 subnormals (subnormal_weights flavours, launched for whole tiles only).
template <int CW, int TN, int MT, bool ZEROS, bool SCALE_IN_A, bool WG = (MT >= 4), bool CHUNK_BATCH = false,
          bool SUBNORMAL = false>
__global__ void __launch_bounds__((kernel_threads<CW, TN, MT, ZEROS, WG, SUBNORMAL>()), 1)
    __maxnreg__((register_cap<CW, TN, MT, SCALE_IN_A, WG, CHUNK_BATCH, SUBNORMAL>()))
        decode_kernel(const __grid_constant__ Params p) {
  using S = Shape<CW, TN, MT, ZEROS, WG>;
  constexpr int WN = S::WN, NACC = S::NACC, kThreads = kernel_threads<CW, TN, MT, ZEROS, WG, SUBNORMAL>();
  extern __shared__ __align__(1024) uint8_t smem[];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q4 = lane & 3;  // mma fragment coordinates: row group, column pair
  const int rank = blockIdx.x;  // split index = rank in the cluster (cluster dims = (split, 1, 1))
  const int tile = blockIdx.y;
  const int nb0 = tile * TN;
  const int n0 = nb0 * 16;
  // This CTA's chunks [c_begin, c_end); stage i holds chunks c_begin + 2i and c_begin + 2i + 1 (if < c_end). The
  // warpgroup-MMA kernels split K in whole stages, so that only the last stage of an odd chunk count holds one
  // chunk (its batch multiplies zero weights with a zero-filled x box); so do the subnormal-weight kernels, whose
  // flushes then fall at stage ends (a chunk split put scale groups across stages and cost a second flush a stage).
  constexpr bool kSubnormal = SUBNORMAL;
  static_assert(!SUBNORMAL || subnormal_weights<CW, TN, MT, SCALE_IN_A, WG>(), "a flavour of subnormal weights");
  constexpr bool kStageSplit = splits_in_stages<WG, SUBNORMAL>();
  const int c_begin = kStageSplit ? 2 * static_cast<int>(static_cast<long long>(rank) * ((p.nch + 1) / 2) / p.split)
                                  : static_cast<int>(static_cast<long long>(rank) * p.nch / p.split);
  const int c_end =
      kStageSplit ? min(p.nch, 2 * static_cast<int>(static_cast<long long>(rank + 1) * ((p.nch + 1) / 2) / p.split))
                  : static_cast<int>(static_cast<long long>(rank + 1) * p.nch / p.split);
  const int nstages = (c_end - c_begin + 1) >> 1;
  const int nstg = p.stages;
  const uint32_t bar_full = smem_addr(smem);            // nstg mbarriers: stage landed
  const uint32_t bar_empty = bar_full + kMaxStages * 8;   // nstg mbarriers: consumers done with the slot
  // The ring starts at the first 1024-byte boundary after the barriers (swizzle atoms; the host adds the slack).
  const uint32_t ring_addr = S::kWG ? (bar_full + kBarrierBytes + 1023) & ~1023u : bar_full + kBarrierBytes;
  uint8_t* ring = smem + (ring_addr - bar_full);
  // Token tile: rows m0 .. m0 + m_rows - 1 of x and out.
  const int m0 = blockIdx.z * S::kTokens;
  const int m_rows = min(S::kTokens, p.m - m0);
  const __half* x_tile = p.x + static_cast<long long>(m0) * p.ldx;

  if (p.pdl) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");

  // A consumer warp releases a ring slot with one arrive after __syncwarp, the usual elected arrive, except on a
  // ring of one slot, where the producer refills the slot right after the release: there every lane arrives.
  // compute-sanitizer racecheck does not credit the __syncwarp and reported hazards on one-slot rings only (none
  // with more slots); with every lane arriving it reports none, and outputs are the same either way. Every lane
  // arriving costs up to 3% on the 4-warp kernels (70B layers at m = 1-4, H200 2026-12-02), so only the one-slot
  // ring pays it (a requested stage count of 1; pick_stages gives one slot by itself only to a CTA of one stage,
  // which never refills it).
  const bool every_lane_releases = nstg == 1;
  const bool releases_slot = every_lane_releases || lane == 0;
  // Token sums (subnormal weights): nstg mbarriers (the sums of a slot written), then per slot the sums of x over
  // chunk 0 and chunk 1 of the stage, S::kTokens floats each.
  const uint32_t bar_sums = ring_addr + max(nstg * S::kStage, S::kRed);
  float* token_sums = reinterpret_cast<float*>(smem + (bar_sums - bar_full) + nstg * 8);
  if (tid < nstg) {  // one thread per ring slot
    mbar_init(bar_full + 8 * tid, 1);
    mbar_init(bar_empty + 8 * tid, every_lane_releases ? CW * 32 : CW);  // the arrivals releases_slot makes
    if (SUBNORMAL) mbar_init(bar_sums + 8 * tid, S::kTokens);  // the summing lanes (piece == 0)
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
      // (the warpgroup-MMA kernels always copy two x boxes: their wgmma batch covers both chunks; a stage box
      // always moves all of its kStageKb x TN blocks, zeros past K and n included)
      if constexpr (S::kStageBox)
        return S::kW + nvc * ((ZEROS ? 2 : 1) * srow_bytes) + 2 * S::kTokens * 128;
      return nvc * (kChunkKb * wrun + (ZEROS ? 2 : 1) * srow_bytes) +
             (S::kWG ? 2 * S::kTokens : nvc * m_rows) * 128;
    };
    auto issue_w = [&](int i, int slot) {
      const int c0 = c_begin + 2 * i;
      const int nvc = min(2, c_end - c0);
      if constexpr (S::kStageBox) {
        // (a stage of one chunk also lands the next chunk's k-blocks, or zeros past K: its consumers skip them)
        if (lane == 0)
          tma_3d_g2s_hint(ring_addr + slot * S::kStage, &p.w_map, 0, nb0, c0 * kChunkKb, bar_full + 8 * slot, pol_w);
      } else if (lane < nvc * kChunkKb) {
        const long long kb = static_cast<long long>(c0) * kChunkKb + lane;
        bulk_g2s_hint(ring_addr + slot * S::kStage + lane * (TN * 128), p.w + (kb * p.nbp + nb0) * 128, wrun,
                      bar_full + 8 * slot, pol_w);
      }
    };
    auto issue_xs = [&](int i, int slot) {
      const int c0 = c_begin + 2 * i;
      const int nvc = min(2, c_end - c0);
      const uint32_t base = ring_addr + slot * S::kStage;
      if constexpr (S::kWG) {
        // Chunk h -> swizzle atom h: one TMA box of 64 columns x the token tile, token row r at r * 128 bytes, its
        // 16-byte piece c at c ^ (r % 8) (the wgmma SWIZZLE_128B K-major layout).
        // A stage of one chunk still gets a second box, which the consumers multiply by zero weights: one wholly
        // past x's last column, which TMA fills with zeros (a copy of real columns would turn an Inf in x into
        // 0 x Inf = NaN).
        if (lane == 0)
          for (int h = 0; h < 2; ++h)
            tma_2d_g2s(base + S::kW + h * (S::kTokens * 128), &p.x_map, (c0 + h < c_end ? c0 + h : p.nch) * 64, m0,
                       bar_full + 8 * slot);
      } else {
        for (int r = lane; r < m_rows; r += 32)
          bulk_g2s(base + S::kW + r * kXRowBytes, x_tile + r * p.ldx + static_cast<long long>(c0) * 64, nvc * 128,
                   bar_full + 8 * slot);
      }
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
  } else if constexpr (S::kWG) {
    // ------------------------------------------------------------------ consumer warpgroups (warpgroup MMA)
    // Per stage: dequantize and scale both chunks' weights into A fragments (a[chunk][k-block][group]), issue
    // 2 x 4 x WN wgmma on the chunks' x atoms, wait for them and release the ring slot. CHUNK_BATCH: the same per
    // chunk, through one buffer of A fragments.
    constexpr int NT = S::kTokens;
    const int wg = warp >> 2, wl = warp & 3;
    float d[WN][NT / 2];
#pragma unroll
    for (int j = 0; j < WN; ++j)
#pragma unroll
      for (int e = 0; e < NT / 2; ++e) d[j][e] = 0.f;
    uint32_t a[CHUNK_BATCH ? 1 : 2][kChunkKb][WN][4];
    // Dequantizes chunk h of the slot at sp into a[buf] (scales, and zero points, applied in fp16).
    auto load_a = [&](const uint8_t* sp, int h, int buf) {
      const __half* srow = reinterpret_cast<const __half*>(sp + S::kW + S::kX + h * S::kSRow);
#pragma unroll
      for (int j = 0; j < WN; ++j) {
        const int nb = (wg * WN + j) * 4 + wl;
        half2 sc_lo, sc_hi, zr_lo, zr_hi;
        row_scales<ZEROS, TN>(srow, nb * 16 + g, sc_lo, sc_hi, zr_lo, zr_hi);
#pragma unroll
        for (int kk = 0; kk < kChunkKb; ++kk) {
          const uint32_t word =
              *reinterpret_cast<const uint32_t*>(sp + ((h * kChunkKb + kk) * TN + nb) * 128 + lane * 4);
          dequant_scaled<ZEROS>(word, sc_lo, sc_hi, zr_lo, zr_hi, a[buf][kk][j]);
        }
      }
    };
    auto zero_a = [&](int buf) {
#pragma unroll
      for (int kk = 0; kk < kChunkKb; ++kk)
#pragma unroll
        for (int j = 0; j < WN; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) a[buf][kk][j][e] = 0u;
    };
    // The fences pin the A fragments' definitions (and the accumulators) before wgmma.fence: an ALU op sunk
    // between the wgmma of a batch makes ptxas serialize them (C7513).
    auto fence_a = [&](int buf) {
#pragma unroll
      for (int kk = 0; kk < kChunkKb; ++kk)
#pragma unroll
        for (int j = 0; j < WN; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) cute::warpgroup_fence_operand(a[buf][kk][j][e]);
    };
    auto fence_d = [&] {
#pragma unroll
      for (int j = 0; j < WN; ++j)
#pragma unroll
        for (int e = 0; e < NT / 2; ++e) cute::warpgroup_fence_operand(d[j][e]);
    };
    auto mma_chunk = [&](uint32_t xs, int h, int buf) {
#pragma unroll
      for (int kk = 0; kk < kChunkKb; ++kk)
#pragma unroll
        for (int j = 0; j < WN; ++j)
          wgmma_rs<NT>(d[j], a[buf][kk][j], sw128_kmajor_desc(xs + h * (NT * 128) + kk * 32));
    };
    RingCursor ring_at;
#pragma unroll 1
    for (int i = 0; i < nstages; ++i) {
      mbar_wait(bar_full + 8 * ring_at.slot, ring_at.phase);
      const uint8_t* sp = ring + ring_at.slot * S::kStage;
      const uint32_t xs = ring_addr + ring_at.slot * S::kStage + S::kW;
      // The batches are the same every stage: a wgmma under a branch makes ptxas serialize them all (C7520), so a
      // stage without a second chunk multiplies zero weights with zeros (the producer's x box for it lies past
      // x's last column).
      auto dequantize_chunk = [&](int h, int buf) {
        if (h == 0 || c_begin + 2 * i + 1 < c_end) {
          load_a(sp, h, buf);
        } else {
          zero_a(buf);
        }
      };
      if constexpr (CHUNK_BATCH) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          dequantize_chunk(h, 0);
          fence_a(0);
          fence_d();
          cute::warpgroup_arrive();
          mma_chunk(xs, h, 0);
          cute::warpgroup_commit_batch();
          fence_d();
          cute::warpgroup_wait<0>();
        }
      } else {
        // Both chunks of the stage are dequantized before one batch of wgmma: more independent work per warp
        // between waits.
        dequantize_chunk(0, 0);
        dequantize_chunk(1, 1);
        fence_a(0);
        fence_a(1);
        fence_d();
        cute::warpgroup_arrive();
        mma_chunk(xs, 0, 0);
        mma_chunk(xs, 1, 1);
        cute::warpgroup_commit_batch();
        fence_d();
        cute::warpgroup_wait<0>();
      }
      __syncwarp();
      if (releases_slot) mbar_arrive(bar_empty + 8 * ring_at.slot);
      ring_at.advance(nstg);
    }
#pragma unroll
    for (int j = 0; j < WN; ++j)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][mt][e] = d[j][4 * mt + e];
  } else if (SUBNORMAL && warp == CW + 1) {
    // ------------------------------------------------------------------ token-sum warp (subnormal weights)
    // The sum of x over each chunk, per token: the consumers' subnormal sums hold 8 times it (dequant_subnormal),
    // and it is the same for every row, so one warp of the CTA works it out instead of one more mma per k-block in
    // every consumer warp. A token's 64 columns are summed by lanes_per_token lanes in a fixed order
    // (deterministic); tokens past m repeat row m - 1, as the consumers' x fragments do.
    constexpr int kLanesPerToken = 32 / S::kTokens;
    constexpr int kCols = 64 / kLanesPerToken;
    const int t = lane / kLanesPerToken, piece = lane % kLanesPerToken;
    const int row = min(t, m_rows - 1);
    RingCursor at;
#pragma unroll 1
    for (int i = 0; i < nstages; ++i) {
      mbar_wait(bar_full + 8 * at.slot, at.phase);
      const uint8_t* xrow = ring + at.slot * S::kStage + S::kW + row * kXRowBytes;
      const int nvc = min(2, c_end - (c_begin + 2 * i));
      for (int h = 0; h < nvc; ++h) {
        const uint4* src = reinterpret_cast<const uint4*>(xrow + h * 128 + piece * kCols * 2);
        float sum = 0.f;
#pragma unroll
        for (int v = 0; v < kCols / 8; ++v) {
          const uint4 u = src[v];
          const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float2 f = __half22float2(as_h2(w[e]));
            sum += f.x;
            sum += f.y;
          }
        }
#pragma unroll
        for (int o = 1; o < kLanesPerToken; o *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (piece == 0) token_sums[(at.slot * 2 + h) * S::kTokens + t] = sum;
      }
      if (piece == 0) mbar_arrive(bar_sums + 8 * at.slot);
      at.advance(nstg);
    }
  } else {
    // ------------------------------------------------------------------ consumer warps
    // part[u]: the mma sums of k-blocks of parity u (two chains when there are few); integer weights flush them
    // into acc, scaled, at the end of every scale group; weights scaled in fp16 (SCALE_IN_A) add them up at the end.
    // kSubnormal (subnormal_weights): the integer weights go to the mma as subnormals (dequant_subnormal: 5 ALU ops a
    // word instead of 5 + 4 fp16 ops), and the flush takes the offset off with the token-sum warp's sums of x over
    // the same chunks, xwin (H200, decode_test bench: 70B qkv / o / down / gate_up and 8B gate_up at m = 1-4 -1 to
    // -3% with the offset from one more mma per k-block, then 8B gate_up -3% and the 70B layers -1 to -2% with the
    // token sums). Flushing at every stage end keeps the offset short: per-column scales on K = 14336 with positive
    // x gave rel. error 3.9e-4 with one flush a CTA, and 2.09e-4 (as exact integers) with these.
    float part[NACC][WN][MT][4];
    float xwin[MT][2];  // subnormal weights: this lane's tokens' sums of x since the last flush
#pragma unroll
    for (int j = 0; j < WN; ++j)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][mt][e] = 0.f;
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

    // The mma of chunk h of the slot at sp (x at xs) into part (and offs): weights as subnormals (kSubnormal), exact
    // fp16 integers, or scaled in fp16 (SCALE_IN_A).
    auto mma_chunk = [&](const uint8_t* sp, uint32_t xs, int h) {
      const __half* srow = reinterpret_cast<const __half*>(sp + S::kW + S::kX + h * S::kSRow);
      half2 sc_lo[WN], sc_hi[WN], zr_lo[WN], zr_hi[WN];
      if (SCALE_IN_A) {
#pragma unroll
        for (int j = 0; j < WN; ++j)
          row_scales<ZEROS, TN>(srow, (warp * WN + j) * 16 + g, sc_lo[j], sc_hi[j], zr_lo[j], zr_hi[j]);
      }
#pragma unroll
      for (int kk = 0; kk < kChunkKb; kk += 2) {
        const int kbl = h * kChunkKb + kk;  // k-blocks kbl and kbl + 1
        uint32_t a[2][WN][4];
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int j = 0; j < WN; ++j) {
            const uint32_t word =
                *reinterpret_cast<const uint32_t*>(sp + ((kbl + u) * TN + warp * WN + j) * 128 + lane * 4);
            if (SCALE_IN_A) {
              dequant_scaled<ZEROS>(word, sc_lo[j], sc_hi[j], zr_lo[j], zr_hi[j], a[u][j]);
            } else if (kSubnormal) {
              dequant_subnormal(word, a[u][j]);
            } else {
              half2 q[4];
              dequant_int(word, q);
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
    };
    auto zero_part = [&] {
#pragma unroll
      for (int u = 0; u < NACC; ++u)
#pragma unroll
        for (int j = 0; j < WN; ++j)
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int e = 0; e < 4; ++e) part[u][j][mt][e] = 0.f;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) xwin[mt][0] = xwin[mt][1] = 0.f;
    };
    zero_part();

    RingCursor ring_at;
#pragma unroll 1
    for (int i = 0; i < nstages; ++i) {
      mbar_wait(bar_full + 8 * ring_at.slot, ring_at.phase);
      const uint8_t* sp = ring + ring_at.slot * S::kStage;
      const uint32_t xs = ring_addr + ring_at.slot * S::kStage + S::kW;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = c_begin + 2 * i + h;
        if (c >= c_end) break;
        mma_chunk(sp, xs, h);
        if (kSubnormal) {
          if (h == 0) mbar_wait(bar_sums + 8 * ring_at.slot, ring_at.phase);
          const float* ts = token_sums + (ring_at.slot * 2 + h) * S::kTokens + 2 * q4;
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            const float2 v = *reinterpret_cast<const float2*>(ts + mt * 8);
            xwin[mt][0] += v.x;
            xwin[mt][1] += v.y;
          }
        }
        // Integer weights flush at the end of every scale group and of this CTA's K range, subnormal ones at the
        // end of every stage as well (their offset sums grow with the run of K they cover).
        if (!SCALE_IN_A && (c + 1 == c_end || ((c + 1) >> p.group_shift) != (c >> p.group_shift) ||
                            (kSubnormal && h == 1))) {
          // acc += scale(row) * the integer sums (subnormal sums: (part - offs) * 2^24 or 2^20)
          const __half* srow = reinterpret_cast<const __half*>(sp + S::kW + S::kX + h * S::kSRow);
#pragma unroll
          for (int j = 0; j < WN; ++j) {
            const int row = (warp * WN + j) * 16 + g;
            const float s_lo = __half2float(srow[row]) * (kSubnormal ? kSubnormalLo : 1.f);
            const float s_hi = __half2float(srow[row + 8]) * (kSubnormal ? kSubnormalHi : 1.f);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                float sum = NACC == 2 ? part[0][j][mt][e] + part[NACC - 1][j][mt][e] : part[0][j][mt][e];
                if (kSubnormal) sum -= xwin[mt][e & 1] * (e < 2 ? kOffsetLo : kOffsetHi);
                acc[j][mt][e] = fmaf(sum, e < 2 ? s_lo : s_hi, acc[j][mt][e]);
              }
            }
          }
          zero_part();
        }
      }
      __syncwarp();
      if (releases_slot) mbar_arrive(bar_empty + 8 * ring_at.slot);
      ring_at.advance(nstg);
    }
    bool nonfinite = false;
    if (kSubnormal) {
#pragma unroll
      for (int j = 0; j < WN; ++j)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 4; ++e) nonfinite |= !(fabsf(acc[j][mt][e]) <= 3.402823466e38f);
    }
    if (kSubnormal && __any_sync(0xffffffffu, nonfinite)) {
      // An Inf or NaN in x makes the token sums non-finite, and part - offset NaN where the exact sums are +-Inf
      // (finite fp16 operands cannot overflow these fp32 sums, the scales are finite, and whole tiles have every
      // row's scales in the ring): the warp then sums its outputs again from global memory, a lane per output, in
      // fp32 (a slow path for inputs that are wrong already, which gives the IEEE classes of the exact sums).
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        float exact[WN * 4];
        exact_lane_sums(p, x_tile, nb0 + warp * WN, WN, lane, m_rows, mt * 8, c_begin, c_end, exact);
#pragma unroll
        for (int j = 0; j < WN; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[j][mt][e] = exact[4 * j + e];
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
      const int row = (S::kWG ? ((warp >> 2) * WN + j) * 4 + (warp & 3) : warp * WN + j) * 16 + g;
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
  if (p.fixup_counters) {
    fixup_through_workspace<TN, S::kTokens, S::kRowPitch, kThreads, wide_split_kernel(CW, S::kWG)>(
        p, red, n0, m0, m_rows);
    return;
  }
  cg::cluster_group cluster = cg::this_cluster();
  // Publishes the partials to the cluster. cg's cluster.sync() compiles to a GPU-scope MEMBAR plus an L1
  // invalidate (ncu: membar stalls on small layers); a hand-written release/acquire barrier.cluster compiles to the
  // same fence, so this stays cg's barrier. (The racecheck reports once blamed on the hand-written barrier came from
  // a consumer-only named barrier before the partial stores, since removed.)
  if (p.split > 1) cluster.sync();
  if (p.pdl) asm volatile("griddepcontrol.wait;\n" ::: "memory");  // out may still be read by the predecessor

  // Outputs of the tile in pieces of 8 features: item i = (token i / (2 TN), features 8 (i % (2 TN)) ..).
  const int items = 2 * TN * m_rows;
  const int i_begin = rank * items / p.split, i_end = (rank + 1) * items / p.split;
  for (int it = i_begin + tid; it < i_end; it += kThreads) {
    const int mtok = it / (2 * TN), c8 = it % (2 * TN);
    const int n = n0 + c8 * 8;
    if (n >= p.n) continue;
    // Distributed shared memory reads take hundreds of cycles (ncu: barrier / long-scoreboard stalls dominate small
    // layers). 32-bit shared::cluster addresses keep the 16 loads in flight within the register budget (generic
    // 64-bit ones spilled at 96 registers).
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
    sum_in_rank_order(p.split, part_lo, part_hi, sum);
    store_outputs(p, sum, m0 + mtok, n);
  }

  // Keep this CTA's partials alive until every peer has read them. Relaxed arrival: this barrier publishes nothing,
  // and each peer's DSMEM loads have completed before it arrives (their values went into the stores above);
  // cg's cluster.sync() would add a GPU-scope MEMBAR and an L1 invalidate on the way out.
  if (p.split > 1) asm volatile("barrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;\n" ::: "memory");
}

// ---------------------------------------------------------------------------------------------------------------
// Host side.

template <int CW, int TN, int MT, bool ZEROS, bool WG, bool SUBNORMAL = false>
int smem_for_stages(int stages) {
  using S = Shape<CW, TN, MT, ZEROS, WG>;
  return kBarrierBytes + (S::kWG ? 1024 : 0) + std::max(stages * S::kStage, S::kRed) +  // (+ alignment slack)
         stages * token_sum_bytes_per_slot<MT, SUBNORMAL>();
}

// Ring depth: every stage of the CTA if that fits, else as many as fit in the budget: ~200 KB for one CTA per SM,
// ~100 KB when the grid wants two CTAs per SM resident at once (dispatch_mode, launch_wg).
template <int CW, int TN, int MT, bool ZEROS, bool WG, bool SUBNORMAL = false>
int pick_stages(int nstages_cta, bool two_per_sm, int requested) {
  using S = Shape<CW, TN, MT, ZEROS, WG>;
  const int budget = requested > 0 ? kSmemMax : (two_per_sm ? kTwoPerSmRing : kOnePerSmRing);
  int st = (budget - kBarrierBytes - (S::kWG ? 1024 : 0)) / (S::kStage + token_sum_bytes_per_slot<MT, SUBNORMAL>());
  if (requested > 0) st = std::min(st, requested);
  st = std::min(st, std::min(kMaxStages, nstages_cta));
  return std::max(st, 1);
}

// cuTensorMapEncodeTiled is a host-only driver function (no GPU work, capturable); it comes through cudart's
// entry-point query, so the library does not link libcuda. Null (with the query's error) where the driver lacks it.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder(cudaError_t* lookup_error) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  static cudaError_t lookup_err = cudaSuccess;
  static std::once_flag once;
  std::call_once(once, [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    lookup_err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q);
    if (lookup_err == cudaSuccess && q == cudaDriverEntryPointSuccess)
      encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  });
  *lookup_error = lookup_err;
  return encode;
}

// One tiled tensor map (unit element strides, no interleave, L2 promotion of 256 bytes; elements outside the tensor
// read as zeros). describe(buf, size) names the tensor for the error message, only on failure (every launch of a
// warpgroup-MMA kernel encodes its maps).
template <typename Describe>
w4a16_status_t encode_tensor_map(CUtensorMap* map, CUtensorMapDataType type, cuuint32_t rank, const void* base,
                                 const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                                 CUtensorMapSwizzle swizzle, Describe&& describe) {
  cudaError_t lookup_err = cudaSuccess;
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder(&lookup_err);
  if (!encode) {
    set_error_message("decode_gemm: cuTensorMapEncodeTiled not available from the driver (%s)",
                      cudaGetErrorString(lookup_err));
    return W4A16_CUDA_ERROR;
  }
  const cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
  auto encode_now = [&] {
    return encode(map, type, rank, const_cast<void*>(base), dims, strides, box, elem_strides,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  };
  CUresult r = encode_now();
  if (r == CUDA_ERROR_INVALID_CONTEXT) {
    // A thread whose first CUDA work this is has no current context yet: the runtime makes the device's primary
    // context current lazily, and the driver's encoder needs one (tests/test_concurrency.py: first use from 8
    // threads). cudaSetDevice makes it current; a capturing thread always has one, so this never runs in a capture.
    int device = 0;
    const cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess && cudaSetDevice(device) == cudaSuccess) r = encode_now();
  }
  if (r != CUDA_SUCCESS) {
    char what[96];
    describe(what, sizeof(what));
    set_error_message("decode_gemm: cuTensorMapEncodeTiled(%s) failed with CUresult %d", what, static_cast<int>(r));
    return W4A16_CUDA_ERROR;
  }
  return W4A16_OK;
}

// x's tensor map for the warpgroup-MMA kernels: (k, m) fp16, rows ldx apart, boxes of 64 columns x `tokens` rows,
// 128-byte swizzle. Elements outside x read as zeros (not the NaN fill), which the box past x's last column (a
// stage of one chunk) relies on: NaN would turn its zero weights' products into NaN.
w4a16_status_t encode_x_map(Params& p, int tokens) {
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(p.nch) * 64, static_cast<cuuint64_t>(p.m)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(p.ldx) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(tokens)};
  return encode_tensor_map(&p.x_map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, p.x, dims, strides, box,
                           CU_TENSOR_MAP_SWIZZLE_128B, [&](char* what, size_t size) {
                             std::snprintf(what, size, "x: k=%d m=%d ldx=%lld", p.nch * 64, p.m, p.ldx);
                           });
}

// The packed weights' tensor map for the stage boxes (Shape::kStageBox): (16 eight-byte words, n-block, k-block),
// n-blocks 128 bytes apart and k-blocks nbp x 128, boxes of (16, tn, kStageKb) land k-block-major as the ring
// holds them; past n or K the box reads zeros.
w4a16_status_t encode_w_map(Params& p, int tn) {
  const cuuint64_t dims[3] = {16, static_cast<cuuint64_t>(p.nbp), static_cast<cuuint64_t>(p.nch) * kChunkKb};
  const cuuint64_t strides[2] = {128, static_cast<cuuint64_t>(p.nbp) * 128};
  const cuuint32_t box[3] = {16, static_cast<cuuint32_t>(tn), static_cast<cuuint32_t>(kStageKb)};
  return encode_tensor_map(&p.w_map, CU_TENSOR_MAP_DATA_TYPE_UINT64, 3, p.w, dims, strides, box,
                           CU_TENSOR_MAP_SWIZZLE_NONE, [&](char* what, size_t size) {
                             std::snprintf(what, size, "packed weights: n-blocks=%d k=%d tile=%d", p.nbp, p.nch * 64,
                                           tn);
                           });
}

template <int CW, int TN, int MT, bool ZEROS, bool SCALE_IN_A, bool WG = (MT >= 4), bool CHUNK_BATCH = false,
          bool SUBNORMAL = false>
w4a16_status_t launch(Params p, int tiles, bool two_per_sm, int requested_stages, cudaStream_t stream) {
  using S = Shape<CW, TN, MT, ZEROS, WG>;
  if constexpr (S::kWG) {
    const w4a16_status_t st = encode_x_map(p, S::kTokens);
    if (st != W4A16_OK) return st;
  }
  if constexpr (S::kStageBox) {
    const w4a16_status_t st = encode_w_map(p, TN);
    if (st != W4A16_OK) return st;
  }
  static_assert(SCALE_IN_A || !ZEROS, "zero points are applied to the weights before the mma");
  static_assert(!CHUNK_BATCH || WG, "chunk batches are a warpgroup-MMA flavour");
  auto kernel = decode_kernel<CW, TN, MT, ZEROS, SCALE_IN_A, WG, CHUNK_BATCH, SUBNORMAL>;
  const int nstages_cta = splits_in_stages<WG, SUBNORMAL>()
                              ? ((p.nch + 1) / 2 + p.split - 1) / p.split
                              : ((p.nch + p.split - 1) / p.split + 1) / 2;
  p.stages = pick_stages<CW, TN, MT, ZEROS, WG, SUBNORMAL>(nstages_cta, two_per_sm, requested_stages);
  const int smem = smem_for_stages<CW, TN, MT, ZEROS, WG, SUBNORMAL>(p.stages);

  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    set_error_message("decode_gemm: cudaGetDevice failed: %s", cudaGetErrorString(err));
    return W4A16_CUDA_ERROR;
  }
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
  const int token_tiles = (p.m + S::kTokens - 1) / S::kTokens;
  cfg.gridDim = dim3(static_cast<unsigned>(p.split), static_cast<unsigned>(tiles), static_cast<unsigned>(token_tiles));
  cfg.blockDim = dim3(kernel_threads<CW, TN, MT, ZEROS, WG, SUBNORMAL>(), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attrs[2];
  int nattrs = 0;
  if (p.split > 1 && !p.fixup_counters) {
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
    set_error_message("decode_gemm: launch of warps=%d tile_nb=%d tokens=%d%s split=%d grid=(%d,%d,%d) smem=%d "
                      "failed: %s", CW, TN, S::kTokens, S::kWG ? " (wgmma)" : "", p.split, p.split, tiles, token_tiles,
                      smem, cudaGetErrorString(err));
    return W4A16_CUDA_ERROR;
  }
  return W4A16_OK;
}

// A grid that wants_two_per_sm takes the kernel flavour that fits two per SM, and a ring of half the size.
template <int CW, int TN, int MT>
w4a16_status_t dispatch_mode(const Params& p, int tiles, int sm, int stages, bool zeros, cudaStream_t stream) {
  const bool two = wants_two_per_sm(static_cast<long long>(tiles) * p.split, sm);
  if (zeros)
    return launch<CW, TN, MT, true, true>(p, tiles, two && two_per_sm_kernel<CW, TN, MT, true>(), stages, stream);
  if constexpr (!two_per_sm_kernel<CW, TN, MT, false>() && two_per_sm_kernel<CW, TN, MT, true>()) {
    // Scales in fp16 on the weights fit two per SM. H200, m = 16: 70B gate_up 97.0 -> 84.6 us (split 1 -> 2),
    // 8B gate_up 28.2 -> 26.7, 70B qkv 27.8 -> 26.7; one CTA per SM it is 4% slower (8192x28672: 60.3 vs 62.7),
    // so those grids keep the exact per-group sums.
    if (two) return launch<CW, TN, MT, false, true>(p, tiles, true, stages, stream);
  }
  if constexpr (subnormal_weights<CW, TN, MT, false, false>()) {
    // Whole tiles only: the scale rows of a tile's rows past n are not copied, and what the ring holds there could
    // read as Inf and send the warp to the slow path (decode_kernel) for outputs nobody stores.
    if (p.n % (TN * 16) == 0)
      return launch<CW, TN, MT, false, false, false, false, true>(
          p, tiles, two && two_per_sm_kernel<CW, TN, MT, false>(), stages, stream);
  }
  return launch<CW, TN, MT, false, false>(p, tiles, two && two_per_sm_kernel<CW, TN, MT, false>(), stages, stream);
}

// (consumer warps, tile_nb) pairs compiled for m <= 16. Measured on H100 (scripts/decode_dev, 2026-11-25): 16
// consumer warps of one n-block each and 64-block tiles were never better than 8 warps of two or four blocks.
// 8-block tiles (one n-block a warp) serve long K on narrow layers, where 16-block tiles run out of CTAs at split 8
// (H200 2026-12-01: 4096x14336 m = 1 15.8 us at 8/7 = 224 CTAs vs 16.7 at 16/8 = 128; on K = 4096 they lose,
// 4096x4096 m = 1 7.1 vs 6.3). (mma.sync with token tiles of 32 and 64 took 1.01-2.9x the CUTLASS time at m =
// 32-64, H200 2026-12-01: the warpgroup-MMA kernels below replaced them.)
// 16-block tiles of 4 consumer warps (four n-blocks each, up to 168 registers at two CTAs per SM) serve long K:
// the x fragments and scale rows a warp loads serve twice the weights, and a lane has more independent mma
// chains in flight (H200, decode_test bench, same tile and split: 8192x28672 m = 4 40.5 -> 36.5 us, m = 1 37.7 ->
// 35.9, m = 16 54.5 -> 51.7; 10240x8192 m = 1-16 -3 to -5%). On K = 4096 the 8-warp CTAs stay ahead (4096x4096
// m = 1: 6.3 against 6.6 us): the split-K epilogue, spread over the CTA's threads, weighs more on short K runs.
struct Variant {
  int warps, tile_nb;
};
constexpr Variant kVariants[] = {{8, 8}, {8, 16}, {8, 32}, {4, 16}};
// m > 16: the warpgroup-MMA kernels, tiles of 8 or 16 n-blocks (128 or 256 features) x 32 or 64 tokens; above 64
// tokens, tiles of 8 n-blocks x 128 tokens (16 n-blocks would keep 128 fp32 sums and 64 A registers a lane), and
// m > 128 in several token tiles. 4 consumer warpgroups of 16-block tiles (one CTA per SM) were never faster
// than 2 (H200, decode_test mid: within 1-3%, and 128-token tiles spilled).
constexpr int kWgMaxTokens = 128;

int wg_tokens(long long m) { return m <= 16 ? 16 : m <= 32 ? 32 : m <= 64 ? 64 : kWgMaxTokens; }
// Tokens per CTA tile of config c at m tokens: the wgmma flavours' tile, or the mma.sync flavours' 8 or 16.
int token_tile(const DecodeConfig& c, long long m) {
  return c.wgmma || m > kDecodeMmaSyncMaxM ? wg_tokens(m) : m <= 8 ? 8 : 16;
}
// Output tiles of config c on problem a (token tiles x feature tiles): the global fix-up keeps one counter and
// split slabs of partials per output tile, at most kFixupCounters tiles.
constexpr long long kFixupCounters = static_cast<long long>(kWorkspaceCounterBytes / sizeof(unsigned));
long long fixup_tile_count(const w4a16_gemm_args_t& a, const DecodeConfig& c) {
  const long long tokens = token_tile(c, a.m);
  const long long tiles = ((a.n + 15) / 16 + c.tile_nb - 1) / c.tile_nb;
  return (a.m + tokens - 1) / tokens * tiles;
}

bool config_valid(const DecodeConfig& c, long long m) {
  if (m < 1 || m > kDecodeMaxM) return false;
  // Splits past a cluster's 8 only through the workspace, in the kernels compiled for them (wide_split_kernel).
  const bool wg = m > kDecodeMmaSyncMaxM || c.wgmma;
  const bool wide_split = c.global_fixup && wide_split_kernel(c.warps, wg);
  if (c.split > (wide_split ? kMaxFixupSplit : kMaxSplit)) return false;
  if (wg)
    return c.warps == 8 && (c.tile_nb == 8 || (c.tile_nb == 16 && wg_tokens(m) <= 64));
  for (const Variant& v : kVariants)
    if (v.warps == c.warps && v.tile_nb == c.tile_nb) return true;
  return false;
}

template <int CW, int TN>
w4a16_status_t dispatch_m(const Params& p, int tiles, int sm, int stages, bool zeros, cudaStream_t stream) {
  static_assert(kDecodeMmaSyncMaxM == 16, "token tiles of 8 and 16");
  if (p.m <= 8) return dispatch_mode<CW, TN, 1>(p, tiles, sm, stages, zeros, stream);
  return dispatch_mode<CW, TN, 2>(p, tiles, sm, stages, zeros, stream);
}

// A grid that wants two CTAs per SM takes the flavour that fits two: a stage's batch where its A fragments fit,
// else chunk batches (16-block tiles of <= 32 tokens).
template <int TN, int MT>
w4a16_status_t launch_wg(const Params& p, int tiles, int sm, int stages, bool zeros, cudaStream_t stream) {
  const int token_tiles = (p.m + 8 * MT - 1) / (8 * MT);
  const bool two = wants_two_per_sm(static_cast<long long>(tiles) * p.split * token_tiles, sm);
  constexpr bool stage_pairs = two_per_sm_kernel<8, TN, MT, true, true>();
  if constexpr (!stage_pairs && two_per_sm_kernel<8, TN, MT, true, true, true>()) {
    if (two) {
      if (zeros) return launch<8, TN, MT, true, true, true, true>(p, tiles, true, stages, stream);
      return launch<8, TN, MT, false, true, true, true>(p, tiles, true, stages, stream);
    }
  }
  if (zeros) return launch<8, TN, MT, true, true, true>(p, tiles, two && stage_pairs, stages, stream);
  return launch<8, TN, MT, false, true, true>(p, tiles, two && stage_pairs, stages, stream);
}

w4a16_status_t dispatch(const DecodeConfig& c, const Params& p, int tiles, int sm, bool zeros,
                        cudaStream_t stream) {
  if (p.m > kDecodeMmaSyncMaxM || c.wgmma) {
    const int tokens = wg_tokens(p.m);
    if (tokens == 16) {
      if (c.tile_nb == 16) return launch_wg<16, 2>(p, tiles, sm, c.stages, zeros, stream);
      return launch_wg<8, 2>(p, tiles, sm, c.stages, zeros, stream);
    }
    if (c.tile_nb == 16) {
      if (tokens == 32) return launch_wg<16, 4>(p, tiles, sm, c.stages, zeros, stream);
      return launch_wg<16, 8>(p, tiles, sm, c.stages, zeros, stream);
    }
    if (tokens == 32) return launch_wg<8, 4>(p, tiles, sm, c.stages, zeros, stream);
    if (tokens == 64) return launch_wg<8, 8>(p, tiles, sm, c.stages, zeros, stream);
    return launch_wg<8, 16>(p, tiles, sm, c.stages, zeros, stream);
  }
  if (c.warps == 4) return dispatch_m<4, 16>(p, tiles, sm, c.stages, zeros, stream);
  if (c.tile_nb == 8) return dispatch_m<8, 8>(p, tiles, sm, c.stages, zeros, stream);
  if (c.tile_nb == 16) return dispatch_m<8, 16>(p, tiles, sm, c.stages, zeros, stream);
  return dispatch_m<8, 32>(p, tiles, sm, c.stages, zeros, stream);
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

// Cluster residency. decode_select_config sizes a grid to one wave: its clusters (tiles x token tiles, of `split`
// CTAs each) must all be resident at once, and the GPCs, not SMs / split, decide how many can be (an 8-CTA cluster
// needs 4 SMs of one GPC at two CTAs per SM). Measured on an H200 (132 SMs, decode_test clusters, 2026-12-01):
constexpr int kH200Sms = 132;
constexpr int kH200OnePerSm[kMaxSplit + 1] = {0, 132, 66, 39, 30, 22, 17, 15, 15};
constexpr int kH200TwoPerSm[kMaxSplit + 1] = {0, 264, 132, 79, 62, 47, 39, 32, 30};

static_assert(sizeof(DecodeClusterFit::one_per_sm) / sizeof(int) == kMaxSplit + 1 &&
                  sizeof(DecodeClusterFit::two_per_sm) / sizeof(int) == kMaxSplit + 1,
              "DecodeClusterFit is indexed by split, 1..kMaxSplit");

DecodeClusterFit scaled_h200_fit(int sm_count) {
  DecodeClusterFit f{};
  for (int s = 1; s <= kMaxSplit; ++s) {  // (at least one cluster: a small part still runs a wave)
    f.one_per_sm[s] = std::max(1, static_cast<int>(static_cast<long long>(kH200OnePerSm[s]) * sm_count / kH200Sms));
    f.two_per_sm[s] = std::max(1, static_cast<int>(static_cast<long long>(kH200TwoPerSm[s]) * sm_count / kH200Sms));
  }
  return f;
}

// A stand-in with the decode kernels' threads: their residency is set by their shared memory (rings of ~100 KB
// or ~200 KB, pick_stages) and their register caps, which allow two CTAs per SM for the first and one for the
// second, so a kernel of the same block and shared memory gets their answer. (Short K gives smaller rings, where
// the real kernel may fit more clusters than this: the table errs on the safe side.)
// (The 4-warp CTAs of kVariants have the same rings and fewer threads: at least as many of them fit.)
constexpr int kProbeThreads = Shape<8, 16, 1, false>::kThreads;
__global__ void __launch_bounds__(kProbeThreads, 1) cluster_probe_kernel(int* sink) {
  if (sink) sink[threadIdx.x] = 0;
}

DecodeClusterFit query_cluster_fit(int sm_count) {
  DecodeClusterFit f = scaled_h200_fit(sm_count);
  if (cudaFuncSetAttribute(cluster_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kOnePerSmRing) !=
      cudaSuccess) {
    (void)cudaGetLastError();  // clear the (non-sticky) error; the table stands in
    return f;
  }
  for (int two = 0; two < 2; ++two)
    for (int s = 1; s <= kMaxSplit; ++s) {
      cudaLaunchConfig_t cfg = {};
      cfg.gridDim = dim3(static_cast<unsigned>(s), static_cast<unsigned>(std::max(sm_count, 1)), 1);
      cfg.blockDim = dim3(kProbeThreads, 1, 1);
      cfg.dynamicSmemBytes = two ? kTwoPerSmRing : kOnePerSmRing;
      cudaLaunchAttribute attr;
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim.x = static_cast<unsigned>(s);
      attr.val.clusterDim.y = 1;
      attr.val.clusterDim.z = 1;
      cfg.attrs = &attr;
      cfg.numAttrs = 1;
      int clusters = 0;
      if (cudaOccupancyMaxActiveClusters(&clusters, cluster_probe_kernel, &cfg) == cudaSuccess && clusters > 0)
        (two ? f.two_per_sm : f.one_per_sm)[s] = clusters;
      else
        (void)cudaGetLastError();
    }
  return f;
}

int max_clusters(const DecodeClusterFit& fit, int split, bool two_per_sm) {
  return two_per_sm ? fit.two_per_sm[split] : fit.one_per_sm[split];
}

}  // namespace decode_detail

DecodeClusterFit decode_cluster_fit(int sm_count) {
  if (sm_count <= 0) sm_count = decode_detail::kH200Sms;
  using decode_detail::kMaxDevices;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    (void)cudaGetLastError();
    return decode_detail::scaled_h200_fit(sm_count);
  }
  // Queried once per device for the process (the runner passes the device's own SM count); a failed query leaves
  // the scaled table for that device.
  static std::once_flag once[kMaxDevices];
  static DecodeClusterFit fits[kMaxDevices];
  std::call_once(once[device], [&] { fits[device] = decode_detail::query_cluster_fit(sm_count); });
  return fits[device];
}

bool decode_serves_problem(const w4a16_gemm_args_t& a) {
  if (a.m < 1 || a.m > kDecodeMaxM || a.n < 8 || a.n % 8 || a.k < 64 || a.k % 64) return false;
  if (a.n > (1ll << 30) || a.k > (1ll << 30)) return false;
  return (a.group_size == 64 || a.group_size == 128 || a.group_size == a.k) && a.k % a.group_size == 0;
}

bool decode_supports(const w4a16_gemm_args_t& a) {
  using decode_detail::aligned16;
  if (!decode_serves_problem(a)) return false;
  if (a.ldx >= (1ll << 39)) return false;  // x's tensor map: row stride < 2^40 bytes
  if (!a.x || !a.packed_weight || !a.scales || !a.out) return false;
  if (!aligned16(a.x) || !aligned16(a.packed_weight) || !aligned16(a.scales) || !aligned16(a.out)) return false;
  if (a.zeros && !aligned16(a.zeros)) return false;
  if (a.ldx < a.k || a.ldx % 8 || a.ldo < a.n || a.ldo % 8) return false;
  return true;
}

size_t decode_config_workspace_size(const w4a16_gemm_args_t& a, const DecodeConfig& c) {
  if (!c.global_fixup || a.m < 1 || c.tile_nb < 1 || c.split < 1) return 0;
  const long long tokens = decode_detail::token_tile(c, a.m);
  return kWorkspaceCounterBytes +
         static_cast<size_t>(decode_detail::fixup_tile_count(a, c) * c.split * tokens * c.tile_nb * 16) * sizeof(float);
}

size_t decode_workspace_size(const w4a16_gemm_args_t& a, int sm_count) {
  const DecodeClusterFit fit = decode_cluster_fit(sm_count);
  return decode_config_workspace_size(a, decode_select_config(a, sm_count, &fit));
}

bool decode_config_valid(const DecodeConfig& cfg, long long m) { return decode_detail::config_valid(cfg, m); }

DecodeConfig decode_select_config(const w4a16_gemm_args_t& a, int sm_count, const DecodeClusterFit* fit_or_null) {
  const long long nbp = (a.n + 15) / 16;
  const long long nch = a.k / 64;
  if (sm_count <= 0) sm_count = decode_detail::kH200Sms;
  const DecodeClusterFit fit = fit_or_null ? *fit_or_null : decode_detail::scaled_h200_fit(sm_count);
  const int max_split = static_cast<int>(std::min<long long>(decode_detail::kMaxSplit, nch));
  const int pdl = (a.flags & W4A16_FLAG_NO_PDL) ? 0 : (a.flags & W4A16_FLAG_NO_WEIGHT_PREFETCH) ? 1 : 2;
  // (the residency the launch will pick: dispatch_mode, launch_wg)
  auto one_wave = [&](long long clusters, int split, bool two_per_sm_kernel) {
    const bool two = two_per_sm_kernel && decode_detail::wants_two_per_sm(clusters * split, sm_count);
    return clusters <= decode_detail::max_clusters(fit, split, two);
  };
  // The warpgroup-MMA grid of the split-K fix-up through the workspace (DecodeConfig::global_fixup), free of the
  // cluster fit: tiles that run two per SM (8 blocks; 16 blocks up to 32 tokens), the largest split that fits
  // 2 x SMs; 16-block tiles where they make as many CTAs and a CTA's K run stays long (16 tokens, or K >= 16384).
  // H200 2026-12-03, `decode_test mid` with MID_GFIX=1 (benchmarks/NOTES.md, session 17): 8192x28672 m = 32 16/8g
  // 53.8 us vs 8/4g 58.5; 8192x8192 m = 32 8/4g 20.9 vs 16/8g 23.9; 10240x8192 m = 16 16/6g 21.9 vs 8/3g 23.6.
  // Split 1 where no such grid exists.
  auto wg_fixup_grid = [&] {
    const int tokens = decode_detail::wg_tokens(a.m);
    const bool long_runs = tokens <= 16 || (tokens <= 32 && nch >= 256);
    DecodeConfig best{8, 8, 1, 0, pdl, true, true};
    long long best_ctas = 0;
    for (int tn : {16, 8}) {
      if (tn == 16 && tokens > 32) continue;
      DecodeConfig c{8, tn, 1, 0, pdl, true, true};
      const long long tiles = decode_detail::fixup_tile_count(a, c);
      if (tiles > decode_detail::kFixupCounters) continue;
      c.split = static_cast<int>(std::min<long long>(max_split, 2ll * sm_count / tiles));
      if (c.split < 2) continue;
      if (tiles * c.split > best_ctas || (tiles * c.split == best_ctas && !long_runs)) {
        best = c;
        best_ctas = tiles * c.split;
      }
    }
    return best;
  };
  // m 9-16 on layers of <= 8192 features and < 2^26 weights: the warpgroup-MMA kernel with 16-token tiles beats
  // mma.sync (H200, decode_test bench with PDL, m = 16: 4096x4096 8.4 vs 10.3 us, 4096x14336 20.2 vs 24.9,
  // 6144x4096 9.9 vs 10.6; 8192x8192 22.4 vs 21.2 stays on mma.sync; wider or larger layers lose up to 1.35x, and
  // m <= 8 loses everywhere: 4096x4096 m = 1 7.6 vs 6.3). On K >= 8192 the other layers where its global-fix-up
  // grid exists take that grid (m = 16, same run: 10240x8192 22.05 vs 23.40 us on mma.sync, 8192x28672 46.9 vs
  // 48.2, 8192x8192 19.4 vs 19.3).
  const bool wg_at_16 = a.m > 8 && a.n <= 8192 && a.n * a.k < (1ll << 26);
  const DecodeConfig fixup_at_16 =
      a.m > 8 && a.m <= kDecodeMmaSyncMaxM && nch >= 128 && !wg_at_16 ? wg_fixup_grid() : DecodeConfig{};
  const bool wg_fixup_at_16 = fixup_at_16.split > 1;
  const bool wgmma = a.m > kDecodeMmaSyncMaxM || wg_at_16 || wg_fixup_at_16;
  if (wgmma) {
    // Warpgroup-MMA kernels, fitted to `decode_test mid` (H200, 2026-12-01; 8 Llama shapes at m = 32, 64, 128, 256
    // over tile x split, benchmarks/NOTES.md):
    //  - token tiles <= 64 on layers of N < 8192: 8-block tiles, two CTAs per SM, K split until the grid holds
    //    ~1.5 x SMs CTAs in clusters of <= 6 (4096x4096 m = 32: 9.7 us at split 6 = 192 CTAs vs 13.3 at 8 = 256;
    //    6144x4096 10.8 at 4 vs 16.1 at 6 = 288, two waves);
    //  - wider layers (N >= 8192): 16-block tiles, one CTA per SM, split while the grid fits one wave, at most 3/4
    //    of the SMs in clusters of >= 3 (28672x4096 m = 32: 31.3 us vs 32.5 for 8-block tiles; 57344x8192 116.8
    //    vs 119.0; 10240x8192 m = 32 31.1 at 16/2 vs 32.6 at 8/2 and 44.7 at 16/3 = 40 clusters of 3, one more
    //    than fit; 8192x8192 m = 64 28.5 at 16/3 vs 29.1 at 8/3: two sweeps, session 6 and 7, agree);
    //  - token tiles of 128: 8-block tiles, one CTA per SM, at most 3/4 of the SMs in clusters of >= 4 (4096x4096:
    //    16.0 us at split 3 vs 26.2 at split 4 = 32 clusters of 4, two more than fit one per SM);
    //  - a split > 1 only where all its clusters fit at once (every such two-wave grid of those sweeps lost; a
    //    grid past one wave at split 1 stays there: 57344x8192 m = 128 was 4% faster at split 2, untested as a
    //    rule), and on K >= 8192 the two-per-SM grids take the most CTAs that fit, up to split 8, as the mma.sync
    //    kernels do: a CTA's fixed costs (prologue, the reduction of its token tile's partials) are small next to
    //    its K run there (4096x14336 m = 32: 20.3 us at 8/7 = 224 CTAs vs 21.8 at 8/6; m = 64 26.3 vs 28.1; H200
    //    2026-12-01). On K = 4096 the 1.5 x SMs cap stays (4096x4096 m = 32: 9.8 at 8/6 vs 10.1 at 8/7, m = 64
    //    14.3 vs 14.8). Tiles of 64 tokens on K < 8192 stop at 3/4 of the SMs, one CTA per SM, where a split of
    //    1.5 x SMs ran slower (4096x4096 m = 64: 12.7 us at 8/3 vs 14.4 at 8/6; 6144x4096 15.4 at 8/2 vs 15.6 at
    //    8/4; H200 2026-12-02, `decode_test mid`); 32-token tiles keep 1.5 x SMs (4096x4096 m = 32: 9.8 at 8/6
    //    vs 11.2 at 8/3);
    //  - wider layers at <= 32 tokens: 16-block tiles two per SM (the chunk-batch flavour, launch_wg), as many CTAs
    //    as fit one wave (H200 2026-12-02, `decode_test mid` m = 32 against one per SM: 57344x8192 100.3 us at
    //    16/1 vs 118.2; 28672x4096 28.9 at 16/2 vs 31.9 at 16/1; 10240x8192 26.9 at 16/5 vs 31.0 at 16/2;
    //    8192x8192 22.7 at 16/7 vs 23.8 at 16/3; 8192x28672 56.7 at 16/7 vs 69.9 at 16/3; every split short of
    //    the fullest wave, and every grid past it, was slower).
    const int tokens = decode_detail::wg_tokens(a.m);
    const long long token_tiles = (a.m + tokens - 1) / tokens;
    const bool wide = tokens <= 64 && nbp >= 512;
    const int tn = wide ? 16 : 8;
    const bool wide_pairs = wide && tokens <= 32;
    const bool two_per_sm = (tokens <= 64 && !wide) || wide_pairs;
    const bool fill_wave = (two_per_sm && nch >= 128) || wide_pairs;
    const long long ctas = (nbp + tn - 1) / tn * token_tiles;
    int split = 1;
    for (int s = 2; s <= std::min(fill_wave ? 8 : 6, max_split); ++s) {
      const long long limit = fill_wave    ? 2ll * sm_count
                              : two_per_sm ? (tokens == 64 ? 3ll * sm_count / 4 : 3ll * sm_count / 2)
                                           : (s >= (wide ? 3 : 4) ? 3ll * sm_count / 4 : sm_count);
      if (ctas * s <= limit && one_wave(ctas, s, two_per_sm)) split = s;
    }
    // The global fix-up where its grid outgrows the cluster grid (wg_fixup_grid): on K >= 8192 at <= 32 tokens
    // whenever it does, at 64 tokens where it has >= 1.5x the CTAs (a 64-token tile's partials cost 4x a 16-token
    // one's), and on shorter K only for 16-token tiles of >= 1.3x the CTAs; never for 128-token tiles, which run
    // one per SM (8192x8192 m = 128: 8/4g 54.1 us vs 8/2 34.1). H200 2026-12-03, `decode_test mid`:
    // 10240x8192 m = 64 8/3g 31.4 us vs 16/2 37.0, 8192x28672 m = 64 8/4g 71.0 vs 16/3 81.8, 8192x8192 m = 32 8/4g
    // 20.9 vs 16/7 23.0, 4096x14336 m = 16 8/8g 17.2 vs 8/7 18.9, 4096x4096 m = 16 8/8g 7.9 vs 8/6 8.4; kept on
    // the clusters: 4096x14336 m = 64 8/7 26.4 vs 8/8g 27.0, 6144x4096 m = 16 8/4 9.9 vs 8/5g 10.1, and every
    // 32- and 64-token tile on K = 4096 (4096x4096 m = 32 8/6 9.9 vs 8/8g 10.9).
    if (wg_fixup_at_16) return fixup_at_16;
    const DecodeConfig fixup = wg_fixup_grid();
    const long long fixup_ctas = fixup.split > 1 ? decode_detail::fixup_tile_count(a, fixup) * fixup.split : 0;
    const long long cluster_ctas = ctas * split;
    const bool take_fixup =
        tokens <= 32 && nch >= 128   ? fixup_ctas > cluster_ctas
        : tokens == 64 && nch >= 128 ? 2 * fixup_ctas >= 3 * cluster_ctas
                                     : tokens == 16 && 10 * fixup_ctas >= 13 * cluster_ctas;
    if (take_fixup) return fixup;
    return DecodeConfig{8, tn, split, 0, pdl, true};
  }
  // mma.sync kernels: the most CTAs that run in one wave, over 16- and 32-block tiles (and 8-block ones from
  // K = 8192 on, kVariants) and splits 1-8; ties go to the larger tile (fewer, longer K runs). Every kernel has
  // a flavour that fits two per SM (dispatch_mode). A CTA's time is set by its share of its SM's bandwidth, so a
  // wave of 224 CTAs beats one of 192 (8192x28672 m = 1: 38.5 us at 16/7 vs 43.0 at 16/6 and 42.6 at 32/6 = 96
  // CTAs one per SM) and any grid that takes two waves loses (16/8 = 32 clusters of 8, two more than fit: 52.6).
  // Fitted to `decode_test narrow` (H200, 2026-12-01, 8 Llama shapes at m = 1 and 16, tiles 16/32 x splits 3,
  // 5-8, then 8/16 x 4-8 on the narrow layers): the best of the sweep on all 16 points (8192x8192 m = 1 14.5 us at
  // 16/7 vs 15.0 at 16/6; 10240x8192 17.5 at 16/5 vs 18.3 at 32/8, m = 16 24.7 vs 26.7; 4096x14336 m = 1 16.0 at
  // 8/7 vs 16.7 at 16/8); earlier sweeps agree (57344x8192 m = 16 32/2 84.6 vs 97.0 at 32/1; 28672x4096 at 32/4).
  // PDL (w4a16.h): 2 = request this CTA's first weight stages before waiting for the previous kernel (the weights
  // are constants), 1 = wait first, 0 = plain launch.
  DecodeConfig best{8, 32, 1, 0, pdl};
  long long best_ctas = 0;
  for (int tn : {32, 16, 8}) {
    if (tn == 8 && nch < 128) continue;
    const long long tiles = (nbp + tn - 1) / tn;
    for (int s = 1; s <= max_split; ++s)
      if (tiles * s > best_ctas && one_wave(tiles, s, true)) {
        best = DecodeConfig{8, tn, s, 0, pdl};
        best_ctas = tiles * s;
      }
  }
  // Long K: where clusters stop the grid short of two CTAs per SM (an H200 holds 30 clusters of 8 and 39 of 6 two
  // per SM, so 32 tiles stopped at split 7 = 224 CTAs and 40 at split 5 = 200), the global fix-up
  // (DecodeConfig::global_fixup) takes the largest split that fits 2 x SMs. Its stores, atomic and L2 round trip
  // cost ~1.8 us a call on short K, and at 16 tokens the fix-up of a tile's 16 x 256 partials costs more than a
  // longer K run saves below K = 16384. H200, decode_test bench, us per call against the cluster grids
  // (2026-12-03): m = 1 / 4: 4096x14336 8/8/7 -> 8 15.9 -> 14.3, 16.8 -> 15.4; 10240x8192 4/16/5 -> 6 16.4 -> 15.4,
  // 16.8 -> 15.8; 8192x8192 4/16/7 -> 8 14.5 -> 13.3, 15.0 -> 13.9; 8192x28672 35.3 -> 32.2, 36.4 -> 33.9; m = 16:
  // 8192x28672 50.4 -> 48.5, but 8192x8192 19.1 -> 20.9, 10240x8192 23.0 -> 23.6, 4096x14336 18.9 -> 19.2.
  // On K = 4096 (m <= 8) only where the fix-up grid doubles the cluster grid's CTAs (H200, decode_test bench,
  // session 19: 4096x4096 8/16/8 -> 8/8/8g 6.35 -> 6.14 us at m = 1, 6.89 -> 6.42 at m = 4; 6144x4096 8/16/8 ->
  // 8/8/5g, 1.25x the CTAs, lost: 7.70 -> 8.32).
  const long long cluster_ctas = best_ctas;
  if (nch >= (a.m <= 8 ? 64 : 128) && (a.m <= 8 || nch >= 256)) {
    for (int tn : {32, 16, 8}) {
      const long long tiles = (nbp + tn - 1) / tn;
      if (tiles > decode_detail::kFixupCounters) continue;
      for (int s = 2; s <= max_split; ++s) {
        const long long ctas = tiles * s;
        if (ctas > best_ctas && ctas <= 2ll * sm_count && !one_wave(tiles, s, true) &&
            (nch >= 128 || ctas >= 2 * cluster_ctas)) {
          best = DecodeConfig{8, tn, s, 0, pdl, false, true};
          best_ctas = ctas;
        }
      }
    }
  }
  // Where that still leaves 8-block tiles (narrow layers on long K), 16-block tiles of 4 consumer warps split past a
  // cluster's 8 through the workspace, up to 1.6 x SMs, win with fewer CTAs: a warp of 4 n-blocks (subnormal
  // weights) does more per instruction than one of 8-block tiles' single n-block. H200 2026-12-03, `decode_test
  // narrow` with NARROW_GFIX=1 (benchmarks/NOTES.md, session 19), 4096x14336 at m = 1 / 4: 4/16/13g (208 CTAs)
  // 12.8 / 13.4 us, 4/16/14g 13.2 / 13.9, 4/16/16g 13.3 / 14.6, 4/16/12g 13.9 / 14.4, against 8/8/8g (256) 14.6 /
  // 15.6. Where 16-block tiles already make the grid (8192x8192 and the wider layers), splits past 8 go past
  // 2 x SMs (4/16/10g on 8192x8192: 20.1 us vs 13.6 at 4/16/8g), and 32-block tiles of 8 warps split 13-16 lost
  // (10240x8192 m = 1 8/32/13g 16.0 vs 4/16/6g 15.5).
  if (a.m <= 8 && nch >= 128 && best.tile_nb == 8) {
    const long long tiles = (nbp + 15) / 16;
    const long long split = std::min<long long>({decode_detail::kMaxFixupSplit, nch, 8ll * sm_count / 5 / tiles});
    if (split > decode_detail::kMaxSplit && tiles <= decode_detail::kFixupCounters)
      best = DecodeConfig{4, 16, static_cast<int>(split), 0, pdl, false, true};
  }
  if (best.tile_nb == 16 && nch >= 128) best.warps = 4;  // long K: 4 consumer warps of 4 n-blocks (kVariants)
  return best;
}

w4a16_status_t decode_gemm_with_config(const w4a16_gemm_args_t& a, const DecodeConfig& c, int sm_count,
                                       void* workspace, cudaStream_t stream) {
  if (!decode_supports(a)) {
    set_error_message("decode_gemm: problem not supported (m=%lld n=%lld k=%lld group=%lld)", (long long)a.m,
                      (long long)a.n, (long long)a.k, (long long)a.group_size);
    return W4A16_INVALID_SHAPE;
  }
  const long long nch = a.k / 64;
  if (c.split < 1 || c.split > nch ||
      !decode_detail::config_valid(c, a.m) || c.pdl < 0 || c.pdl > 2 || c.stages < 0) {
    set_error_message("decode_gemm: bad config warps=%d tile_nb=%d split=%d stages=%d pdl=%d for m=%lld", c.warps,
                      c.tile_nb, c.split, c.stages, c.pdl, (long long)a.m);
    return W4A16_INVALID_VALUE;
  }
  if (sm_count <= 0) sm_count = 132;
  decode_detail::Params p{};
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
  p.fixup_counters = nullptr;
  p.fixup_partials = nullptr;
  if (c.global_fixup) {
    const long long counters = decode_detail::fixup_tile_count(a, c);
    if (counters > decode_detail::kFixupCounters) {
      set_error_message("decode_gemm: a global split-K fix-up of %lld tiles needs more than the workspace's %lld "
                        "counters", counters, decode_detail::kFixupCounters);
      return W4A16_INVALID_VALUE;
    }
    if (!workspace || !decode_detail::aligned16(workspace)) {
      set_error_message("decode_gemm: the global split-K fix-up needs a 16-byte aligned workspace (got %p)", workspace);
      return workspace ? W4A16_MISALIGNED : W4A16_INSUFFICIENT_WORKSPACE;
    }
    p.fixup_counters = static_cast<unsigned*>(workspace);
    p.fixup_partials = reinterpret_cast<float*>(static_cast<char*>(workspace) + kWorkspaceCounterBytes);
  }
  return decode_detail::dispatch(c, p, tiles, sm_count, a.zeros != nullptr, stream);
}

std::string describe_decode_config(const w4a16_gemm_args_t& a, const DecodeConfig& c) {
  const long long tokens = decode_detail::token_tile(c, a.m);
  const long long tiles = decode_detail::fixup_tile_count(a, c);  // feature tiles x token tiles
  const char* reduction = c.split == 1       ? ""
                          : c.global_fixup ? "; partials summed in rank order through the workspace by each "
                                             "tile's last CTA"
                                           : "; partials summed in rank order through the cluster's shared memory";
  char split[32] = "K not split";
  if (c.split > 1) std::snprintf(split, sizeof(split), "K split %d ways", c.split);
  char line[384];
  std::snprintf(line, sizeof(line), "decode kernel (%s), %d consumer warps, %lld tile%s of %d features x %lld tokens, "
                "%s: %lld CTA%s%s",
                c.wgmma || a.m > kDecodeMmaSyncMaxM ? "warpgroup MMA" : "mma.sync", c.warps, tiles, tiles == 1 ? "" : "s",
                c.tile_nb * 16, tokens, split, tiles * c.split, tiles * c.split == 1 ? "" : "s", reduction);
  return line;
}

w4a16_status_t decode_gemm(const w4a16_gemm_args_t& a, int sm_count, void* workspace, cudaStream_t stream) {
  const DecodeClusterFit fit = decode_cluster_fit(sm_count);
  return decode_gemm_with_config(a, decode_select_config(a, sm_count, &fit), sm_count, workspace, stream);
}

}  // namespace w4a16
