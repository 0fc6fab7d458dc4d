// Standalone test + benchmark of the decode kernel (csrc/decode_gemm.cu). Build: scripts/decode_dev/run.sh.
//   decode_test check        correctness on small shapes (all configs) + a 4096x4096 shape, determinism
//   decode_test check-small  a short correctness pass (for compute-sanitizer)
//   decode_test bench        protocol-v2 timing of the Llama shapes at M = 1, 4, 16, auto config (+ a PDL column)
//   decode_test sweep        the same shapes over tile / split / pipeline / PDL variants
//   decode_test narrow       the same shapes at M = 1 and 16 over tile x split x ring depth, with the auto choice
//                            (env NARROW_MS, NARROW_WARPS, NARROW_TILES, NARROW_SPLITS, NARROW_STAGES, NARROW_KS:
//                            lists replacing the defaults)
//   decode_test mid          the same shapes at M = 32, 64, 128, 256 (warpgroup-MMA kernels) over tile x split
//                            (env MID_MS: the m list, MID_SPLITS: the splits, MID_NS: only these layer widths)
//   decode_test profile ...  R eager launches of one config for ncu (profile.sh, stalls.sh)
//   decode_test thread       a decode call as the first CUDA work of a fresh thread (also the first case of check)
//   decode_test capture      the process's first decode calls inside a stream capture, then the graph replayed
//   decode_test clusters     how many clusters of 1-16 CTAs of the decode kernel's resources fit at once, and the
//                            library's fit (decode_cluster_fit)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "decode_gemm.cuh"
#include "kernel_registry.h"
#include "packing.h"

namespace w4a16 {
// The library's runner defines this; the standalone test keeps the message.
static char g_msg[1024];
void set_error_message(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof(g_msg), fmt, ap);
  va_end(ap);
}
}  // namespace w4a16

#define CK(call)                                                                                    \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, \
                   #call);                                                                          \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)

#define CKW(call)                                                                                     \
  do {                                                                                                \
    w4a16_status_t s_ = (call);                                                                       \
    if (s_ != W4A16_OK) {                                                                             \
      std::fprintf(stderr, "w4a16 status %d at %s:%d: %s (%s)\n", (int)s_, __FILE__, __LINE__, #call, \
                   w4a16::g_msg);                                                                     \
      std::exit(3);                                                                                   \
    }                                                                                                 \
  } while (0)

using w4a16::DecodeConfig;

// This device's SM count, as the library's runner passes it (132 on an H100 SXM / H200).
static int sm_count() {
  static const int n = [] {
    int device = 0, v = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || v <= 0)
      return 132;
    return v;
  }();
  return n;
}

// The library's choice on this device (decode_gemm passes the device's cluster fit the same way).
static w4a16::DecodeConfig auto_config(const w4a16_gemm_args_t& a) {
  const w4a16::DecodeClusterFit fit = w4a16::decode_cluster_fit(sm_count());
  return w4a16::decode_select_config(a, sm_count(), &fit);
}

static int g_failures = 0;

// One workspace for every call of the process, zero-filled when (re)allocated as the library's contract asks
// (w4a16.h); decode_test runs one stream at a time. Grown outside stream captures only (capture_chain sizes it
// first).
static void* g_ws = nullptr;
static size_t g_ws_bytes = 0;
static void* workspace_for(size_t need) {
  if (need > g_ws_bytes) {
    if (g_ws) CK(cudaFree(g_ws));
    CK(cudaMalloc(&g_ws, need));
    CK(cudaMemset(g_ws, 0, need));
    CK(cudaDeviceSynchronize());
    g_ws_bytes = need;
  }
  return g_ws;
}
static size_t workspace_need(const w4a16_gemm_args_t& a, const DecodeConfig* cfg) {
  return cfg ? w4a16::decode_config_workspace_size(a, *cfg) : w4a16::decode_workspace_size(a, sm_count());
}
// The counters of a global fix-up must read zero after every call (the next call counts from there).
static bool counters_at_zero() {
  if (!g_ws) return true;
  std::vector<unsigned> c(w4a16::kWorkspaceCounterBytes / sizeof(unsigned));
  CK(cudaMemcpy(c.data(), g_ws, c.size() * sizeof(unsigned), cudaMemcpyDeviceToHost));
  for (unsigned v : c)
    if (v) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------------------
// Correctness.

struct Case {
  int m, n, k, group;
  bool zeros, bias;
  float alpha;
  int ldx_pad, ldo_pad;
  bool x_positive = false;  // x in [0, 1) (post-activation inputs) instead of [-1, 1)
  int inf_col = -1;         // >= 0: x[0][inf_col] = +Inf, and token 0's outputs must be the reference's +-Inf / NaN
  double max_rel = 2e-3;    // relative Frobenius error allowed
};

static uint16_t h2bits(__half h) {
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

// Returns false on failure. cfgs: configs to run (auto when tile_nb == 0).
static bool run_case(const Case& c, const std::vector<DecodeConfig>& cfgs, uint64_t seed, bool verbose) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u11(-1.f, 1.f), us(0.005f, 0.02f), uz(-0.05f, 0.05f);
  std::uniform_int_distribution<int> uq(-8, 7);
  const int64_t M = c.m, N = c.n, K = c.k, G = c.group;
  const int64_t ldx = K + c.ldx_pad, ldo = N + c.ldo_pad;
  const int64_t npad = w4a16::padded_n(N);
  std::vector<int8_t> q(K * N);
  for (auto& v : q) v = static_cast<int8_t>(uq(rng));
  std::vector<__half> s((K / G) * N), z((K / G) * N), bias(N), x(M * ldx);
  for (auto& v : s) v = __float2half(us(rng));
  for (auto& v : z) v = __float2half(uz(rng));
  for (auto& v : bias) v = __float2half(u11(rng));
  for (int64_t i = 0; i < M * ldx; ++i) {
    const float v = c.x_positive ? 0.5f * (u11(rng) + 1.f) : u11(rng);
    x[i] = (i % ldx) < K ? __float2half(v) : __float2half(NAN);
  }
  if (c.inf_col >= 0) x[c.inf_col] = __float2half(INFINITY);
  std::vector<uint8_t> packed(npad * K / 2, 0);
  for (int64_t kk = 0; kk < K; ++kk)
    for (int64_t nn = 0; nn < N; ++nn) {
      const int64_t off = w4a16::packed_nibble_offset(nn, kk, npad);
      packed[off >> 1] |= static_cast<uint8_t>((q[kk * N + nn] & 0xF) << ((off & 1) * 4));
    }
  // float64 reference
  std::vector<double> ref(M * N), wcol(K);
  for (int64_t nn = 0; nn < N; ++nn) {
    for (int64_t kk = 0; kk < K; ++kk) {
      const int64_t gi = (kk / G) * N + nn;
      double w = q[kk * N + nn] * (double)__half2float(s[gi]);
      if (c.zeros) w += (double)__half2float(z[gi]);
      wcol[kk] = w;
    }
    for (int64_t mm = 0; mm < M; ++mm) {
      double acc = 0;
      const __half* xr = &x[mm * ldx];
      for (int64_t kk = 0; kk < K; ++kk) acc += (double)__half2float(xr[kk]) * wcol[kk];
      ref[mm * N + nn] = c.alpha * acc + (c.bias ? (double)__half2float(bias[nn]) : 0.0);
    }
  }
  // device buffers of exact size (memcheck sees any overrun)
  __half *dx, *ds, *dz = nullptr, *db = nullptr, *dout;
  uint8_t* dw;
  CK(cudaMalloc(&dx, M * ldx * 2));
  CK(cudaMalloc(&dw, packed.size()));
  CK(cudaMalloc(&ds, s.size() * 2));
  if (c.zeros) CK(cudaMalloc(&dz, z.size() * 2));
  if (c.bias) CK(cudaMalloc(&db, N * 2));
  CK(cudaMalloc(&dout, M * ldo * 2));
  CK(cudaMemcpy(dx, x.data(), M * ldx * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw, packed.data(), packed.size(), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(ds, s.data(), s.size() * 2, cudaMemcpyHostToDevice));
  if (c.zeros) CK(cudaMemcpy(dz, z.data(), z.size() * 2, cudaMemcpyHostToDevice));
  if (c.bias) CK(cudaMemcpy(db, bias.data(), N * 2, cudaMemcpyHostToDevice));

  w4a16_gemm_args_t a{};
  a.m = M; a.n = N; a.k = K; a.group_size = G;
  a.x = dx; a.ldx = ldx; a.packed_weight = dw; a.scales = ds; a.zeros = dz; a.bias = db;
  a.alpha = c.alpha; a.out = dout; a.ldo = ldo;
  if (!w4a16::decode_supports(a)) {
    std::printf("FAIL decode_supports false for m=%d n=%d k=%d g=%d\n", c.m, c.n, c.k, c.group);
    ++g_failures;
    return false;
  }
  bool ok = true;
  std::vector<__half> out(M * ldo), out2(M * ldo);
  for (const DecodeConfig& cfg0 : cfgs) {
    if (cfg0.tile_nb != 0 && !w4a16::decode_config_valid(cfg0, M)) continue;  // e.g. 32-block tiles above m = 32
    DecodeConfig cfg = cfg0.tile_nb == 0 ? auto_config(a) : cfg0;
    if (cfg0.tile_nb == 0) {
      cfg.pdl = cfg0.pdl;
      cfg.stages = cfg0.stages;
    }
    if (cfg.split > K / 64) cfg.split = (int)(K / 64);
    double err_num = 0, err_den = 0;
    bool unwritten = false, clobbered = false, nondet = false, inf_mismatch = false, counters = false;
    bool twin_differs = false;
    void* ws = workspace_for(w4a16::decode_config_workspace_size(a, cfg));
    for (int rep = 0; rep < 2; ++rep) {
      CK(cudaMemset(dout, 0xFF, M * ldo * 2));  // fp16 0xFFFF = NaN
      CKW(w4a16::decode_gemm_with_config(a, cfg, sm_count(), ws, 0));
      CK(cudaGetLastError());
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(rep ? out2.data() : out.data(), dout, M * ldo * 2, cudaMemcpyDeviceToHost));
      if (cfg.global_fixup && !counters_at_zero()) counters = true;
    }
    if (cfg.global_fixup && cfg.split <= 8) {  // the cluster twin (clusters of <= 8) sums the same partials
                                                // in the same order: the same bits
      DecodeConfig twin = cfg;
      twin.global_fixup = false;
      std::vector<__half> out3(M * ldo);
      CK(cudaMemset(dout, 0xFF, M * ldo * 2));
      CKW(w4a16::decode_gemm_with_config(a, twin, sm_count(), nullptr, 0));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(out3.data(), dout, M * ldo * 2, cudaMemcpyDeviceToHost));
      twin_differs = std::memcmp(out.data(), out3.data(), out.size() * 2) != 0;
    }
    for (int64_t mm = 0; mm < M; ++mm)
      for (int64_t nn = 0; nn < ldo; ++nn) {
        const __half h = out[mm * ldo + nn];
        if (nn >= N) {
          if (h2bits(h) != 0xFFFF) clobbered = true;
          continue;
        }
        const double v = __half2float(h);
        if (c.inf_col >= 0 && mm == 0) {  // IEEE classes of the reference: +-Inf, or NaN where q = 0
          const double r = ref[nn];
          if (std::isnan(r) != std::isnan(v) || (std::isinf(r) && r != v)) inf_mismatch = true;
          continue;
        }
        if (!std::isfinite(v)) unwritten = true;
        const double d = v - ref[mm * N + nn];
        err_num += d * d;
        err_den += ref[mm * N + nn] * ref[mm * N + nn];
      }
    if (std::memcmp(out.data(), out2.data(), out.size() * 2) != 0) nondet = true;
    const double rel = std::sqrt(err_num / std::max(err_den, 1e-300));
    const bool pass =
        !unwritten && !clobbered && !nondet && !inf_mismatch && !counters && !twin_differs && rel < c.max_rel;
    if (!pass || verbose)
      std::printf("%s m=%d n=%d k=%d g=%d zeros=%d bias=%d alpha=%.2f ldx+%d ldo+%d cfg(warps=%d tn=%d split=%d "
                  "stages=%d pdl=%d wgmma=%d gfix=%d): rel_err=%.3e%s%s%s%s%s%s\n",
                  pass ? "ok  " : "FAIL", c.m, c.n, c.k, c.group, c.zeros, c.bias, c.alpha, c.ldx_pad, c.ldo_pad,
                  cfg.warps, cfg.tile_nb, cfg.split, cfg.stages, cfg.pdl, (int)cfg.wgmma, (int)cfg.global_fixup, rel,
                  unwritten ? " UNWRITTEN/NaN" : "", clobbered ? " WROTE-PAST-N" : "",
                  nondet ? " NONDETERMINISTIC" : "", inf_mismatch ? " INF-ROW-MISMATCH" : "",
                  counters ? " COUNTERS-NOT-ZERO" : "", twin_differs ? " DIFFERS-FROM-CLUSTER-TWIN" : "");
    if (!pass) {
      ok = false;
      ++g_failures;
    }
  }
  CK(cudaFree(dx)); CK(cudaFree(dw)); CK(cudaFree(ds)); CK(cudaFree(dout));
  if (dz) CK(cudaFree(dz));
  if (db) CK(cudaFree(db));
  return ok;
}

static std::vector<DecodeConfig> all_configs() {
  std::vector<DecodeConfig> v;
  v.push_back({0, 0, 0, 0, 0});  // auto
  const int tns[2] = {16, 32};
  const int splits[4] = {1, 3, 5, 8};
  for (int tn : tns)
    for (int sp : splits) v.push_back({8, tn, sp, 0, 0});
  for (int sp : splits) v.push_back({8, 8, sp, 0, 0});  // (mma.sync up to m = 16, warpgroup MMA above)
  v.push_back({8, 8, 2, 1, 2});
  v.push_back({8, 8, 3, 0, 2, true});   // m <= 16 through the warpgroup-MMA kernel (16-token tiles)
  v.push_back({8, 16, 1, 2, 0, true});
  v.push_back({8, 16, 2, 1, 0});  // ring of one stage
  v.push_back({8, 16, 1, 2, 1});  // ring wrap-around, PDL
  v.push_back({8, 32, 7, 3, 2});
  for (int sp : {1, 5, 7}) v.push_back({4, 16, sp, 0, 2});  // 4 consumer warps (mma.sync, m <= 16)
  v.push_back({4, 16, 2, 1, 1});  // ring of one stage
  v.push_back({0, 0, 0, 2, 2});    // auto tile / split
  // split-K through the workspace (global_fixup): both warp counts, split 1 and 8, no PDL, 16-token warpgroup MMA
  // (and, above m = 16, the warpgroup-MMA kernels of 8-block tiles)
  v.push_back({4, 16, 5, 0, 2, false, true});
  v.push_back({8, 8, 8, 0, 2, false, true});
  v.push_back({8, 32, 3, 0, 0, false, true});
  v.push_back({8, 16, 1, 0, 2, false, true});
  v.push_back({8, 8, 3, 0, 2, true, true});
  v.push_back({8, 16, 6, 0, 2, true, true});  // 16-block warpgroup-MMA tiles of <= 32 tokens, two per SM (m <= 64:
                                               // the 64-token tiles run one per SM)
  // splits past a cluster's 8 (the workspace fix-up of wide_split_kernel only; clamped to k / 64 where k is short)
  v.push_back({4, 16, 16, 0, 2, false, true});
  v.push_back({4, 16, 12, 0, 0, false, true});
  v.push_back({4, 16, 9, 2, 1, false, true});
  return v;
}

static void first_call_in_thread(bool capture = false);

static void check(bool small) {
  first_call_in_thread();
  std::vector<Case> cases;
  // every token tile (8, 16, 32, 64) full and ragged
  const std::vector<int> ms_full = {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 32, 33, 47, 64, 65, 100, 128, 129, 256};
  const std::vector<int> ms_small = {1, 7, 9, 16, 20, 40, 100, 200};
  uint64_t seed = 1;
  int idx = 0;
  for (int m : (small ? ms_small : ms_full)) {
    // cycle shapes / modes so every m meets several of them
    const int ns[] = {8, 24, 136, 264, 512};
    const int ks[] = {64, 192, 512, 1024};
    for (int t = 0; t < (small ? 2 : 4); ++t, ++idx) {
      Case c;
      c.m = m;
      c.n = ns[(idx * 3 + t) % 5];
      c.k = ks[(idx + t) % 4];
      const int gsel = (idx + 2 * t) % 3;
      c.group = gsel == 0 ? 64 : gsel == 1 ? 128 : c.k;
      if (c.k % c.group) c.group = 64;
      c.zeros = (idx % 2) == 1;
      c.bias = (idx % 3) != 0;
      c.alpha = (idx % 4 == 0) ? 1.0f : 0.75f;
      c.ldx_pad = (idx % 2) ? 8 : 0;
      c.ldo_pad = (idx % 3 == 1) ? 16 : 0;
      cases.push_back(c);
    }
  }
  std::vector<DecodeConfig> cfgs = all_configs();
  if (small)
    cfgs = {{0, 0, 0, 0, 0}, {8, 16, 3, 2, 0}, {8, 32, 8, 1, 2}, {8, 32, 1, 0, 1}, {8, 8, 5, 1, 2}, {8, 8, 2, 0, 2, true},
            {4, 16, 3, 1, 2}};
  if (const char* list = std::getenv("CHECK_CONFIGS")) {  // "warps/tile/split/stages/pdl,..." replaces the list
    cfgs.clear();
    for (const char* p = list; *p;) {
      DecodeConfig c{};
      int used = 0;
      if (std::sscanf(p, "%d/%d/%d/%d/%d%n", &c.warps, &c.tile_nb, &c.split, &c.stages, &c.pdl, &used) != 5 ||
          (p[used] != ',' && p[used] != '\0')) {
        // a list that parsed to nothing would check nothing and report 0 failures
        std::fprintf(stderr, "CHECK_CONFIGS: expected warps/tile/split/stages/pdl[,...] at \"%s\"\n", p);
        std::exit(2);
      }
      cfgs.push_back(c);
      p += used;
      if (*p == ',') ++p;
    }
  }
  for (const Case& c : cases) run_case(c, cfgs, seed++, false);
  if (!small) {
    // a Llama-sized shape through the auto config at decode m
    const int ms[] = {1, 16};
    for (int m : ms) {
      Case big{m, 4096, 4096, 128, false, true, 1.0f, 0, 0};
      run_case(big, {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 2}}, seed++, true);
    }
    Case bigz{16, 6144, 4096, 128, true, false, 1.0f, 0, 0};
    run_case(bigz, {{0, 0, 0, 0, 0}}, seed++, true);
    Case bigk{4, 1000, 14336, 14336, false, true, 0.5f, 8, 8};  // per-column scales, n % 16 != 0
    run_case(bigk, {{0, 0, 0, 0, 0}, {8, 16, 7, 3, 0}}, seed++, true);
    // positive activations: the sums of x do not cancel, so any rounding that scales with |sum x| shows here
    Case pos_k{16, 4096, 14336, 14336, false, false, 1.0f, 0, 0, true};
    run_case(pos_k, {{0, 0, 0, 0, 0}, {8, 32, 1, 0, 0}}, seed++, true);
    Case pos_g{1, 4096, 4096, 128, false, true, 1.0f, 0, 0, true};
    run_case(pos_g, {{0, 0, 0, 0, 0}}, seed++, true);
    // weights as subnormals (m <= 8, warps of 4 n-blocks): offset sums flushed at every stage end, largest with
    // positive x and one scale group per column (8/16: the exact integers of the same problem, for comparison)
    // (exact integers: 2.09e-4; offsets flushed once per scale group, as a first version did: 3.86e-4)
    Case pos_sub{4, 4096, 14336, 14336, false, true, 1.0f, 0, 0, true};
    pos_sub.max_rel = 3e-4;
    run_case(pos_sub, {{4, 16, 7, 0, 2}, {8, 32, 1, 0, 0}, {8, 16, 7, 0, 2}}, seed++, true);
    // (m = 12: two token tiles, where the kernels keep exact integers; subnormal weights run at m <= 8 only)
    Case pos_sub16{12, 4096, 14336, 14336, false, true, 1.0f, 0, 0, true};
    pos_sub16.max_rel = 3e-4;
    run_case(pos_sub16, {{4, 16, 7, 0, 2}, {8, 16, 7, 0, 2}, {8, 8, 7, 0, 2}, {8, 32, 1, 0, 0}}, seed++, true);
    Case pos_sub64{1, 8192, 8192, 64, false, false, 1.0f, 0, 0, true};
    pos_sub64.max_rel = 3e-4;
    run_case(pos_sub64, {{0, 0, 0, 0, 0}, {4, 16, 5, 0, 2}, {8, 16, 5, 0, 2}}, seed++, true);
    // an Inf in x: subnormal weights make the token sums Inf and part - offset NaN, so those warps sum their outputs
    // again on an exact fp32 path (every kernel flavour for the same IEEE result; m = 12 runs the two-token-tile
    // flavours, which have no slow path)
    for (int g : {64, 128})
      for (int m : {3, 12}) {
        Case inf_x{m, 8192, 8192, g, false, true, 1.0f, 0, 0};
        inf_x.inf_col = 4100;
        run_case(inf_x, {{0, 0, 0, 0, 0}, {4, 16, 3, 1, 2}, {8, 32, 5, 0, 2}, {8, 16, 5, 0, 2}, {8, 8, 8, 0, 2}},
                 seed++, true);
      }
    // the global fix-up where the auto config takes it (long K, split 8 past the cluster fit): 4-warp 16-block
    // tiles at m <= 8 (subnormal weights) and 16 (fp16 scales, zero points), 8-block tiles; the counters must be
    // back at zero after every call and the outputs bit-identical to the cluster twin's (run_case)
    for (int m : {1, 5, 12}) {
      Case gfix{m, 8192, 8192, m == 5 ? 64 : 128, m == 12, true, 0.75f, 0, 8};
      run_case(gfix, {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 2}}, seed++, true);
    }
    Case gfix8{4, 4096, 14336, 128, false, true, 1.0f, 8, 0};
    run_case(gfix8, {{0, 0, 0, 0, 2}}, seed++, true);
    // grids sized for two CTAs per SM (auto: 32-block tiles x split 8 = 192 CTAs), at m > 8 the kernel flavour
    // that applies the scales in fp16
    Case wide{12, 12288, 1024, 128, false, true, 1.0f, 0, 0, true};
    run_case(wide, {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 2}}, seed++, true);
    Case wide1{5, 12288, 1024, 64, false, false, 1.0f, 0, 0};
    run_case(wide1, {{0, 0, 0, 0, 0}}, seed++, true);
    // 16-token warpgroup-MMA tiles of 16 blocks, one and two CTAs per SM, an odd chunk count (the last stage holds
    // one chunk)
    Case wg16{12, 12288, 1088, 64, false, true, 1.0f, 0, 0, true};
    run_case(wg16, {{8, 16, 2, 0, 2, true}, {8, 16, 4, 0, 2, true}}, seed++, true);
    Case wg32z{24, 12288, 1088, 64, true, true, 1.0f, 8, 0};  // 32 tokens, zero points, the auto config
    run_case(wg32z, {{0, 0, 0, 0, 0}, {8, 16, 4, 0, 2}}, seed++, true);
    // m 17-64: token tiles of 32 and 64, both grid sizes, zero points
    Case mid32{32, 4096, 4096, 128, false, true, 1.0f, 0, 0, true};
    run_case(mid32, {{0, 0, 0, 0, 0}, {8, 16, 8, 0, 2}, {8, 32, 4, 0, 2}}, seed++, true);
    Case mid64{64, 6144, 4096, 128, true, false, 1.0f, 0, 0};
    run_case(mid64, {{0, 0, 0, 0, 0}, {8, 16, 3, 0, 2}}, seed++, true);
    Case mid48{48, 12288, 1024, 64, false, true, 0.5f, 8, 8};
    run_case(mid48, {{0, 0, 0, 0, 0}, {8, 16, 1, 0, 0}}, seed++, true);
    Case mid128{128, 4096, 4096, 128, false, false, 1.0f, 0, 0, true};
    run_case(mid128, {{0, 0, 0, 0, 0}, {8, 8, 8, 0, 2}, {8, 8, 1, 3, 2}}, seed++, true);
    Case mid200{200, 2048, 8192, 128, true, true, 1.0f, 8, 0};
    run_case(mid200, {{0, 0, 0, 0, 0}, {8, 8, 2, 0, 2}}, seed++, true);
    // what decode_supports must refuse
    w4a16_gemm_args_t a{};
    alignas(16) static char dummy[64];
    a.m = 1; a.n = 64; a.k = 128; a.group_size = 128; a.x = dummy; a.ldx = 128; a.packed_weight = dummy;
    a.scales = dummy; a.out = dummy; a.ldo = 64; a.alpha = 1.f;
    const bool base_ok = w4a16::decode_supports(a);
    w4a16_gemm_args_t b = a; b.m = w4a16::kDecodeMaxM + 1;
    w4a16_gemm_args_t c = a; c.n = 60;
    w4a16_gemm_args_t d = a; d.group_size = 32;
    w4a16_gemm_args_t e = a; e.x = dummy + 2;
    w4a16_gemm_args_t f = a; f.ldo = 68;
    w4a16_gemm_args_t g = a; g.k = 96; g.ldx = 96; g.group_size = 96;
    const bool refused = !w4a16::decode_supports(b) && !w4a16::decode_supports(c) && !w4a16::decode_supports(d) &&
                         !w4a16::decode_supports(e) && !w4a16::decode_supports(f) && !w4a16::decode_supports(g);
    std::printf("%s decode_supports: accepts a valid problem=%d, refuses bad ones=%d\n",
                base_ok && refused ? "ok  " : "FAIL", base_ok, refused);
    if (!(base_ok && refused)) ++g_failures;
  }
  std::printf("check%s: %zu cases x %zu configs, %d failures\n", small ? "-small" : "", cases.size(), cfgs.size(),
              g_failures);
}

// ------------------------------------------------------------------------------------------------------------
// Benchmark (shared/README.md protocol v2).

__global__ void fill_random_u32(uint32_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
    p[i] = h;
  }
}
__global__ void fill_random_half(__half* p, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
    p[i] = __float2half(lo + (hi - lo) * (h >> 8) * (1.0f / 16777216.0f));
  }
}

__global__ void empty_kernel() {}

static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static double copy_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  void *a, *b;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 2; ++i) CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
  CK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int i = 0; i < 10; ++i) {
    CK(cudaEventRecord(e0, 0));
    CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
    CK(cudaEventRecord(e1, 0));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * bytes / (t[t.size() / 2] * 1e-3);  // read + write
}

struct ShapeBufs {
  int n, k, R;
  std::vector<uint8_t*> w;
  std::vector<__half*> s, x, out;
};

static ShapeBufs alloc_shape(int n, int k, int max_m) {
  ShapeBufs b;
  b.n = n;
  b.k = k;
  const size_t wbytes = (size_t)w4a16::padded_n(n) * k / 2;
  const size_t sbytes = (size_t)(k / 128) * n * 2;
  const double r = std::ceil(256.0 * 1024 * 1024 / (double)(wbytes + sbytes));
  b.R = (int)std::min(64.0, std::max(4.0, r));
  for (int i = 0; i < b.R; ++i) {
    uint8_t* w;
    __half *s, *x, *o;
    CK(cudaMalloc(&w, wbytes));
    CK(cudaMalloc(&s, sbytes));
    CK(cudaMalloc(&x, (size_t)max_m * k * 2));
    CK(cudaMalloc(&o, (size_t)max_m * n * 2));
    fill_random_u32<<<1024, 256>>>(reinterpret_cast<uint32_t*>(w), wbytes / 4, 1234u + i);
    CK(cudaGetLastError());
    fill_random_half<<<256, 256>>>(s, sbytes / 2, 77u + i, 0.002f, 0.01f);
    CK(cudaGetLastError());
    fill_random_half<<<256, 256>>>(x, (size_t)max_m * k, 999u + i, -1.f, 1.f);
    CK(cudaGetLastError());
    CK(cudaMemset(o, 0, (size_t)max_m * n * 2));
    b.w.push_back(w);
    b.s.push_back(s);
    b.x.push_back(x);
    b.out.push_back(o);
  }
  CK(cudaDeviceSynchronize());
  return b;
}

static void free_shape(ShapeBufs& b) {
  for (int i = 0; i < b.R; ++i) {
    CK(cudaFree(b.w[i]));
    CK(cudaFree(b.s[i]));
    CK(cudaFree(b.x[i]));
    CK(cudaFree(b.out[i]));
  }
}

static w4a16_gemm_args_t make_args(const ShapeBufs& b, int i, int m) {
  w4a16_gemm_args_t a{};
  a.m = m; a.n = b.n; a.k = b.k; a.group_size = 128;
  a.x = b.x[i]; a.ldx = b.k; a.packed_weight = b.w[i]; a.scales = b.s[i]; a.zeros = nullptr; a.bias = nullptr;
  a.alpha = 1.0f; a.out = b.out[i]; a.ldo = b.n;
  return a;
}

// The benchmark's chain: one graph of the R calls on their own weights (cfg, or the auto config when null).
// False, with the reason printed, if it cannot be captured.
static bool capture_chain(const ShapeBufs& b, int m, const DecodeConfig* cfg, cudaStream_t stream, cudaGraph_t* graph) {
  void* ws = workspace_for(workspace_need(make_args(b, 0, m), cfg));  // (the R calls share it, in stream order)
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  w4a16_status_t st = W4A16_OK;
  for (int i = 0; i < b.R && st == W4A16_OK; ++i) {
    w4a16_gemm_args_t a = make_args(b, i, m);
    st = cfg ? w4a16::decode_gemm_with_config(a, *cfg, sm_count(), ws, stream)
             : w4a16::decode_gemm(a, sm_count(), ws, stream);
  }
  cudaError_t ce = cudaStreamEndCapture(stream, graph);
  if (st != W4A16_OK || ce != cudaSuccess) {
    std::printf("  capture failed: status %d (%s), %s\n", (int)st, w4a16::g_msg, cudaGetErrorString(ce));
    cudaGetLastError();
    if (ce == cudaSuccess) CK(cudaGraphDestroy(*graph));
    return false;
  }
  return true;
}

// Median per-call time in microseconds (one graph of R calls), or -1 if the config cannot be captured.
static double time_config(const ShapeBufs& b, int m, const DecodeConfig* cfg, cudaStream_t stream) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  if (!capture_chain(b, m, cfg, stream, &graph)) return -1;
  CK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(exec, stream));
  CK(cudaStreamSynchronize(stream));
  sleep_ms(30);
  cudaEvent_t e0[15], e1[15];
  for (int i = 0; i < 15; ++i) {
    CK(cudaEventCreate(&e0[i]));
    CK(cudaEventCreate(&e1[i]));
  }
  for (int i = 0; i < 15; ++i) {
    CK(cudaEventRecord(e0[i], stream));
    CK(cudaGraphLaunch(exec, stream));
    CK(cudaEventRecord(e1[i], stream));
  }
  CK(cudaStreamSynchronize(stream));
  std::vector<float> t;
  for (int i = 0; i < 15; ++i) {
    float ms;
    CK(cudaEventElapsedTime(&ms, e0[i], e1[i]));
    t.push_back(ms);
    CK(cudaEventDestroy(e0[i]));
    CK(cudaEventDestroy(e1[i]));
  }
  std::sort(t.begin(), t.end());
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  return t[t.size() / 2] * 1e3 / b.R;
}

struct NK {
  const char* name;
  int n, k;
};
static const NK kShapes[8] = {{"8b.qkv", 6144, 4096},   {"8b.o", 4096, 4096},    {"8b.gate_up", 28672, 4096},
                              {"8b.down", 4096, 14336}, {"70b.qkv", 10240, 8192}, {"70b.o", 8192, 8192},
                              {"70b.gate_up", 57344, 8192}, {"70b.down", 8192, 28672}};

static double floor_bytes(int m, int n, int k) {
  return (double)n * k / 2 + (double)n * (k / 128) * 2 + (double)m * k * 2 + (double)m * n * 2;
}

static void bench(bool sweep) {
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double bw = copy_bandwidth();
  std::printf("device-to-device copy (1 GiB, read+write): %.1f GB/s\n", bw / 1e9);
  std::vector<std::string> table;
  if (sweep) {
    // Fixed per-call cost: an empty kernel, and tiny weights through the auto config.
    {
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      const int R = 32;
      CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
      for (int i = 0; i < R; ++i) empty_kernel<<<1, 32, 0, stream>>>();
      CK(cudaGetLastError());
      CK(cudaStreamEndCapture(stream, &graph));
      CK(cudaGraphInstantiate(&exec, graph, 0));
      cudaEvent_t e0, e1;
      CK(cudaEventCreate(&e0));
      CK(cudaEventCreate(&e1));
      for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(exec, stream));
      std::vector<float> t;
      for (int i = 0; i < 15; ++i) {
        CK(cudaEventRecord(e0, stream));
        CK(cudaGraphLaunch(exec, stream));
        CK(cudaEventRecord(e1, stream));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms);
      }
      std::sort(t.begin(), t.end());
      std::printf("empty kernel in a graph: %.2f us per call\n", t[7] * 1e3 / R);
      CK(cudaEventDestroy(e0));
      CK(cudaEventDestroy(e1));
      CK(cudaGraphExecDestroy(exec));
      CK(cudaGraphDestroy(graph));
    }
    const int probe_k[3] = {128, 1024, 4096};
    for (int k : probe_k) {
      ShapeBufs b = alloc_shape(4096, k, 16);
      w4a16_gemm_args_t a = make_args(b, 0, 1);
      DecodeConfig ac = auto_config(a);
      std::printf("probe N=4096 K=%d M=1 R=%d auto=(%d,%d,%d): %.2f us;", k, b.R, ac.warps, ac.tile_nb, ac.split,
                  time_config(b, 1, nullptr, stream));
      const int wt[2][2] = {{8, 16}, {8, 32}};
      for (auto& p : wt) {
        DecodeConfig c{p[0], p[1], 1, 0, 0};
        std::printf(" %d/%d/1:%.2f", p[0], p[1], time_config(b, 1, &c, stream));
      }
      std::printf("\n");
      free_shape(b);
    }
  }
  for (const NK& sh : kShapes) {
    ShapeBufs b = alloc_shape(sh.n, sh.k, 64);
    const int ms_bench[] = {1, 4, 16};
    const int ms_sweep[] = {1, 16};
    if (!sweep) {
      for (int m : ms_bench) {
        w4a16_gemm_args_t a = make_args(b, 0, m);
        DecodeConfig c = auto_config(a);
        DecodeConfig c0 = c;
        c0.pdl = 0;
        const double us = time_config(b, m, &c0, stream);
        DecodeConfig c2 = c;
        c2.pdl = 2;
        const double us2 = time_config(b, m, &c2, stream);
        const double bytes = floor_bytes(m, sh.n, sh.k);
        const double fl = bytes / bw * 1e6;
        char line[256];
        std::snprintf(line, sizeof(line),
                      "| %-11s | %5d | %5d | %2d | %2d/%2d/%d%s | %3d | %7.2f | %7.1f | %5.2f | %7.2f | %5.2f |",
                      sh.name, sh.n, sh.k, m, c.warps, c.tile_nb, c.split, c.global_fixup ? "g" : "", b.R, us,
                      bytes / (us * 1e-6) / 1e9, us / fl, us2, us2 / fl);
        table.push_back(line);
        std::printf("%s\n", line);
        std::fflush(stdout);
      }
    } else {
      for (int m : ms_sweep) {
        w4a16_gemm_args_t a = make_args(b, 0, m);
        DecodeConfig ac = auto_config(a);
        const double fl = floor_bytes(m, sh.n, sh.k) / bw * 1e6;
        std::printf("sweep %s N=%d K=%d M=%d floor=%.2fus auto=(%d,%d,%d):", sh.name, sh.n, sh.k, m, fl, ac.warps,
                    ac.tile_nb, ac.split);
        const int wt[2][2] = {{8, 16}, {8, 32}};
        const int sps[7] = {1, 2, 3, 4, 5, 6, 8};
        double best = 1e30;
        DecodeConfig bc{};
        for (auto& p : wt)
          for (int sp : sps) {
            DecodeConfig c{p[0], p[1], sp, 0, 0};
            if (sp > sh.k / 64 || !w4a16::decode_config_valid(c, m)) continue;
            const double t = time_config(b, m, &c, stream);
            if (t > 0 && t < best) {
              best = t;
              bc = c;
            }
            std::printf(" %d/%d/%d:%.2f", p[0], p[1], sp, t);
            std::fflush(stdout);
          }
        std::printf(" | best %d/%d/%d %.2f (%.2fx floor) |", bc.warps, bc.tile_nb, bc.split, best, best / fl);
        for (int pdl = 1; pdl <= 2; ++pdl) {
          DecodeConfig c = ac;
          c.pdl = pdl;
          std::printf(" pdl%d:%.2f", pdl, time_config(b, m, &c, stream));
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
    free_shape(b);
  }
  if (!sweep) {
    std::printf("\nH100 copy BW %.1f GB/s; floor = bytes / copy BW; R weight sets, graph of R calls, median of 15\n",
                bw / 1e9);
    std::printf("| shape | N | K | M | warps/tn/split (g: global fix-up) | R | us no PDL | GB/s | t/floor | us PDL+prefetch "
                "| t/floor PDL |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (auto& l : table) std::printf("%s\n", l.c_str());
  }
  CK(cudaStreamDestroy(stream));
}

// A comma-separated list of ints from the environment (e.g. MID_MS=1,4,16), or `fallback`.
static std::vector<int> env_ints(const char* name, std::vector<int> fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  std::vector<int> v;
  for (const char* q = e; *q;) {
    v.push_back(std::atoi(q));
    while (*q && *q != ',') ++q;
    if (*q == ',') ++q;
  }
  return v;
}

// All 8 layers: tile x split x ring depth (smaller rings let 2-3 CTAs share an SM, so more clusters are resident at
// once), PDL on as in the library's default launch; decode_select_config's rules were fitted to this table.
static void sweep_narrow() {
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double bw = copy_bandwidth();
  const int shapes[][2] = {{4096, 4096},  {6144, 4096},  {4096, 14336}, {8192, 8192},
                           {10240, 8192}, {28672, 4096}, {57344, 8192}, {8192, 28672}};
  const std::vector<int> only_k = env_ints("NARROW_KS", {});
  const bool gfix = env_ints("NARROW_GFIX", {0})[0] != 0;  // (as MID_GFIX)
  for (auto& sh : shapes) {
    if (!only_k.empty() && std::find(only_k.begin(), only_k.end(), sh[1]) == only_k.end()) continue;
    ShapeBufs b = alloc_shape(sh[0], sh[1], 64);
    for (int m : env_ints("NARROW_MS", {1, 16})) {
      DecodeConfig ac = auto_config(make_args(b, 0, m));
      ac.pdl = 2;
      const double fl = floor_bytes(m, sh[0], sh[1]) / bw * 1e6;
      const double t_auto = time_config(b, m, &ac, stream);
      double best = 1e30;
      DecodeConfig bc = ac;
      std::printf("narrow N=%d K=%d M=%d floor=%.2f auto(%d/%d/%d st%d)=%.2f |", sh[0], sh[1], m, fl, ac.warps,
                  ac.tile_nb, ac.split, ac.stages, t_auto);
      for (int warps : env_ints("NARROW_WARPS", {8}))
        for (int tn : env_ints("NARROW_TILES", {16, 32}))
          for (int sp : env_ints("NARROW_SPLITS", {2, 4, 6, 8}))
            for (int st : env_ints("NARROW_STAGES", {0, 2, 4})) {
              DecodeConfig c{warps, tn, sp, st, 2};
              c.global_fixup = gfix;  // NARROW_GFIX=1: split-K through the workspace (splits up to 16)
              if (sp > sh[1] / 64 || !w4a16::decode_config_valid(c, m)) continue;
              const double t = time_config(b, m, &c, stream);
              std::printf(" %s%d/%d/%d%s:%.1f", warps == 8 ? "" : "w4:", tn, sp, st, gfix ? "g" : "", t);
              if (t > 0 && t < best) {
                best = t;
                bc = c;
              }
            }
      std::printf("\n  BEST N=%d K=%d M=%d: %d/%d/%d%s st%d %.2f us (%.2fx floor) vs auto %d/%d/%d%s %.2f (%.2fx)\n",
                  sh[0], sh[1], m, bc.warps, bc.tile_nb, bc.split, bc.global_fixup ? "g" : "", bc.stages, best,
                  best / fl, ac.warps, ac.tile_nb, ac.split, ac.global_fixup ? "g" : "", t_auto, t_auto / fl);
      std::fflush(stdout);
    }
    free_shape(b);
  }
  CK(cudaStreamDestroy(stream));
}

// m 32-256 (warpgroup-MMA kernels, token tiles of 32, 64, 128): tile x split, PDL on, against the auto choice. The
// CUTLASS times of the same points are in the grid of record (benchmarks/results/*-grid.csv).
static void sweep_mid() {
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double bw = copy_bandwidth();
  const std::vector<int> only_n = env_ints("MID_NS", {});
  const bool gfix = env_ints("MID_GFIX", {0})[0] != 0;  // + every split's global fix-up twin
  for (const NK& sh : kShapes) {
    if (!only_n.empty() && std::find(only_n.begin(), only_n.end(), sh.n) == only_n.end()) continue;
    ShapeBufs b = alloc_shape(sh.n, sh.k, 256);
    for (int m : env_ints("MID_MS", {32, 64, 128, 256})) {
      DecodeConfig ac = auto_config(make_args(b, 0, m));
      ac.pdl = 2;
      const double fl = floor_bytes(m, sh.n, sh.k) / bw * 1e6;
      const double t_auto = time_config(b, m, &ac, stream);
      double best = 1e30;
      DecodeConfig bc = ac;
      std::printf("mid %s N=%d K=%d M=%d floor=%.2f auto(%d/%d)=%.2f |", sh.name, sh.n, sh.k, m, fl, ac.tile_nb,
                  ac.split, t_auto);
      for (int tn : {8, 16})
        for (int sp : env_ints("MID_SPLITS", {1, 2, 3, 4, 5, 6, 7, 8}))
          for (int g = 0; g <= (gfix && sp > 1 ? 1 : 0); ++g) {
            DecodeConfig c{8, tn, sp, 0, 2, true, g == 1};  // (wgmma: m <= 16 through the warpgroup-MMA kernel too)
            if (sp > sh.k / 64 || !w4a16::decode_config_valid(c, m)) continue;
            const double t = time_config(b, m, &c, stream);
            std::printf(" %d/%d%s:%.1f", tn, sp, g ? "g" : "", t);
            std::fflush(stdout);
            if (t > 0 && t < best) {
              best = t;
              bc = c;
            }
          }
      std::printf("\n  BEST %s M=%d: %d/%d%s %.2f us (%.2fx floor) vs auto %d/%d%s %.2f (%.2fx)\n", sh.name, m,
                  bc.tile_nb, bc.split, bc.global_fixup ? "g" : "", best, best / fl, ac.tile_nb, ac.split,
                  ac.global_fixup ? "g" : "", t_auto, t_auto / fl);
      std::fflush(stdout);
    }
    free_shape(b);
  }
  CK(cudaStreamDestroy(stream));
}

// For ncu: R eager launches of one config on the R cold weight sets of (n, k), m tokens.
//   ncu -s 2 -c 1 -k regex:decode_kernel decode_test profile 4096 4096 1 [tile_nb split]
static void profile(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: decode_test profile N K M [tile_nb split]\n");
    std::exit(2);
  }
  const int n = std::atoi(argv[2]), k = std::atoi(argv[3]), m = std::atoi(argv[4]);
  ShapeBufs b = alloc_shape(n, k, 64);
  DecodeConfig c = auto_config(make_args(b, 0, m));
  if (argc >= 7) {
    c.tile_nb = std::atoi(argv[5]);
    c.split = std::atoi(argv[6]);
  }
  c.pdl = 0;
  std::printf("profile N=%d K=%d M=%d warps/tn/split=%d/%d/%d R=%d\n", n, k, m, c.warps, c.tile_nb, c.split, b.R);
  void* ws = workspace_for(workspace_need(make_args(b, 0, m), &c));
  for (int i = 0; i < b.R; ++i) {
    w4a16_gemm_args_t a = make_args(b, i, m);
    if (w4a16::decode_gemm_with_config(a, c, sm_count(), ws, 0) != W4A16_OK) {
      std::printf("launch failed: %s\n", w4a16::g_msg);
      std::exit(1);
    }
  }
  CK(cudaDeviceSynchronize());
  free_shape(b);
}

// A decode call as the first CUDA work of a fresh thread (the warpgroup-MMA kernels encode x's tensor map through
// the driver, which needs a current context that the runtime only makes current lazily); capture: the process's
// first decode calls (m = 40, warpgroup MMA, then m = 4, mma.sync) inside a global-mode stream capture, where the
// one-time setup (shared-memory attributes, the device's cluster fit) runs, then the graph replayed.
static void first_call_in_thread(bool capture) {
  const int m = 40, n = 264, k = 512;
  __half *x, *s, *out;
  uint8_t* w;
  CK(cudaMalloc(&x, m * k * 2));
  CK(cudaMalloc(&s, (k / 128) * n * 2));
  CK(cudaMalloc(&out, m * n * 2));
  CK(cudaMalloc(&w, (size_t)w4a16::padded_n(n) * k / 2));
  CK(cudaMemset(x, 0, m * k * 2));
  CK(cudaMemset(s, 0, (k / 128) * n * 2));
  CK(cudaMemset(w, 0, (size_t)w4a16::padded_n(n) * k / 2));
  CK(cudaDeviceSynchronize());
  w4a16_status_t st = W4A16_OK;
  if (capture) {
    cudaStream_t stream;
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int mm : {m, 4}) {
      w4a16_gemm_args_t a{};
      a.m = mm; a.n = n; a.k = k; a.group_size = 128; a.x = x; a.ldx = k; a.packed_weight = w; a.scales = s;
      a.alpha = 1.0f; a.out = out; a.ldo = n;
      if (st == W4A16_OK) st = w4a16::decode_gemm(a, sm_count(), nullptr, stream);
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (st == W4A16_OK && end != cudaSuccess) {
      std::snprintf(w4a16::g_msg, sizeof(w4a16::g_msg), "cudaStreamEndCapture: %s", cudaGetErrorString(end));
      st = W4A16_CUDA_ERROR;
    }
    if (st == W4A16_OK) {
      cudaGraphExec_t exec;
      CK(cudaGraphInstantiate(&exec, graph, 0));
      CK(cudaGraphLaunch(exec, stream));
      CK(cudaStreamSynchronize(stream));
      CK(cudaGraphExecDestroy(exec));
    }
    if (graph) CK(cudaGraphDestroy(graph));
    CK(cudaStreamDestroy(stream));
    std::printf("%s first calls inside a stream capture: status %d %s\n", st == W4A16_OK ? "ok  " : "FAIL", (int)st,
                st == W4A16_OK ? "" : w4a16::g_msg);
    if (st != W4A16_OK) ++g_failures;
    CK(cudaFree(x)); CK(cudaFree(s)); CK(cudaFree(out)); CK(cudaFree(w));
    return;
  }
  std::thread t([&] {
    w4a16_gemm_args_t a{};
    a.m = m; a.n = n; a.k = k; a.group_size = 128; a.x = x; a.ldx = k; a.packed_weight = w; a.scales = s;
    a.alpha = 1.0f; a.out = out; a.ldo = n;
    st = w4a16::decode_gemm(a, 132, nullptr, 0);  // (a constant: no CUDA call may come first in this thread)
    if (st == W4A16_OK) st = cudaDeviceSynchronize() == cudaSuccess ? W4A16_OK : W4A16_CUDA_ERROR;
  });
  t.join();
  std::printf("%s first call in a fresh thread: status %d %s\n", st == W4A16_OK ? "ok  " : "FAIL", (int)st,
              st == W4A16_OK ? "" : w4a16::g_msg);
  if (st != W4A16_OK) ++g_failures;
  CK(cudaFree(x)); CK(cudaFree(s)); CK(cudaFree(out)); CK(cudaFree(w));
}

// How many clusters of `split` CTAs of 288 threads and `smem` bytes of shared memory can be resident at once
// (cudaOccupancyMaxActiveClusters: what the GPCs fit, not SMs / split). The decode kernels' residency is decided by
// their shared memory (the rings are sized for one or two CTAs per SM, and the register caps allow two), so a
// stand-in kernel of the same threads and shared memory gives their answer.
__global__ void __launch_bounds__(288, 1) resources_kernel(float* sink) {
  if (sink) sink[threadIdx.x] = 0.f;
}
static void cluster_fit_row(int smem) {
  CK(cudaFuncSetAttribute(resources_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
  CK(cudaFuncSetAttribute(resources_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  std::printf("smem %3d KB |", smem / 1024);
  for (int split = 1; split <= 16; ++split) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(split, sm_count(), 1);
    cfg.blockDim = dim3(288, 1, 1);
    cfg.dynamicSmemBytes = smem;
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = split;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, resources_kernel, &cfg);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      std::printf(" %d:-", split);
    } else {
      std::printf(" %d:%d(%d)", split, clusters, clusters * split);
    }
  }
  std::printf("\n");
}
static void cluster_fit() {
  std::printf("max active clusters of split CTAs, as split:clusters(CTAs)\n");
  for (int smem : {40 * 1024, 77 * 1024, 100 * 1024, 113 * 1024, 150 * 1024, 200 * 1024, 226 * 1024})
    cluster_fit_row(smem);
  const w4a16::DecodeClusterFit fit = w4a16::decode_cluster_fit(sm_count());
  std::printf("the library's fit (decode_cluster_fit), one per SM |");
  for (int split = 1; split <= 8; ++split) std::printf(" %d:%d", split, fit.one_per_sm[split]);
  std::printf("\nthe library's fit (decode_cluster_fit), two per SM |");
  for (int split = 1; split <= 8; ++split) std::printf(" %d:%d", split, fit.two_per_sm[split]);
  std::printf("\n");
}

#ifdef EXP_TIMELINE
// ------------------------------------------------------------------------------------------------------------
// Where a call's time goes in a chain (the benchmark's graph of R calls on cold weights): per-CTA %globaltimer
// stamps from the experiment copy (scripts/decode_dev/experiments/timeline.patch, -DEXP_TIMELINE).
namespace w4a16 {
void decode_timeline_reset();
int decode_timeline_read(void* dst, int max);
}  // namespace w4a16
struct TlRec {
  unsigned long long out, t[7];
  unsigned int cta, smid;
};

static void timeline() {
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const std::vector<int> shapes = env_ints("TL_SHAPES", {1, 0, 3, 6});
  const std::vector<int> ms = env_ints("TL_MS", {1, 16, 64});
  std::vector<TlRec> recs(1 << 16);
  std::printf("per call (us), averaged over calls 2..R of the chain; 'prev' = the previous call's last CTA exit:\n"
              "  lead     first CTA entry - prev (negative: launched early by PDL)\n"
              "  spread   last CTA entry - first CTA entry\n"
              "  release  first CTA past griddepcontrol.wait - prev\n"
              "  kloop    last CTA done with its K loop - first release\n"
              "  reduce   last CTA past the epilogue's cluster barrier + wait - last K loop done\n"
              "  tail     last CTA exit - last CTA past the epilogue barrier\n"
              "  period   last exit - prev (the per-call time of the chain)\n");
  for (int si : shapes) {
    const NK& sh = kShapes[si];
    for (int m : ms) {
      ShapeBufs b = alloc_shape(sh.n, sh.k, std::max(m, 16));
      w4a16_gemm_args_t a0 = make_args(b, 0, m);
      DecodeConfig ac = auto_config(a0);
      // TL_TILE / TL_SPLIT / TL_STAGES override the auto config's fields (the rest, PDL included, stays).
      const bool forced = std::getenv("TL_TILE") || std::getenv("TL_SPLIT") || std::getenv("TL_STAGES");
      if (const char* v = std::getenv("TL_TILE")) ac.tile_nb = std::atoi(v);
      if (const char* v = std::getenv("TL_SPLIT")) ac.split = std::atoi(v);
      if (const char* v = std::getenv("TL_STAGES")) ac.stages = std::atoi(v);
      const double us = time_config(b, m, forced ? &ac : nullptr, stream);
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      if (!capture_chain(b, m, forced ? &ac : nullptr, stream, &graph)) std::exit(3);
      CK(cudaGraphInstantiate(&exec, graph, 0));
      for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(exec, stream));
      CK(cudaStreamSynchronize(stream));
      sleep_ms(30);
      w4a16::decode_timeline_reset();
      CK(cudaGraphLaunch(exec, stream));
      CK(cudaStreamSynchronize(stream));
      const int nrec = w4a16::decode_timeline_read(recs.data(), (int)recs.size());
      CK(cudaGetLastError());
      std::map<unsigned long long, int> call_of;
      for (int i = 0; i < b.R; ++i) call_of[reinterpret_cast<unsigned long long>(b.out[i])] = i;
      const unsigned long long inf = ~0ull;
      std::vector<unsigned long long> e0(b.R, inf), e1(b.R, 0), w0(b.R, inf), k1(b.R, 0), p1(b.R, 0), x1(b.R, 0);
      std::vector<int> ctas(b.R, 0);
      std::vector<unsigned long long> all;
      for (int r = 0; r < nrec; ++r) {
        const TlRec& t = recs[r];
        auto it = call_of.find(t.out);
        if (it == call_of.end()) continue;
        const int i = it->second;
        ++ctas[i];
        e0[i] = std::min(e0[i], t.t[0]);
        e1[i] = std::max(e1[i], t.t[0]);
        w0[i] = std::min(w0[i], t.t[1]);
        k1[i] = std::max(k1[i], t.t[2]);
        p1[i] = std::max(p1[i], t.t[3]);
        x1[i] = std::max(x1[i], t.t[4]);
        for (int j = 0; j < 5; ++j) all.push_back(t.t[j]);
      }
      if (const char* dump = std::getenv("TL_DUMP")) {  // raw records: call, cta, smid, t0..t4 (ns)
        char path[512];
        std::snprintf(path, sizeof(path), "%s/timeline_%s_m%d.csv", dump, sh.name, m);
        if (FILE* f = std::fopen(path, "w")) {
          std::fprintf(f, "call,cta,smid,entry,wait,kloop,epi,exit,first_full,last_full\n");
          for (int r = 0; r < nrec; ++r) {
            const TlRec& t = recs[r];
            auto it = call_of.find(t.out);
            if (it == call_of.end()) continue;
            std::fprintf(f, "%d,%u,%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", it->second, t.cta, t.smid, t.t[0], t.t[1],
                         t.t[2], t.t[3], t.t[4], t.t[5], t.t[6]);
          }
          std::fclose(f);
        }
      }
      std::sort(all.begin(), all.end());
      unsigned long long gran = inf;
      for (size_t j = 1; j < all.size(); ++j)
        if (all[j] != all[j - 1]) gran = std::min(gran, all[j] - all[j - 1]);
      double lead = 0, spread = 0, release = 0, kloop = 0, reduce = 0, tail = 0, period = 0;
      int n = 0;
      for (int i = 1; i < b.R; ++i) {
        if (!ctas[i] || !ctas[i - 1]) continue;
        const double prev = (double)x1[i - 1];
        lead += (double)e0[i] - prev;
        spread += (double)(e1[i] - e0[i]);
        release += (double)w0[i] - prev;
        kloop += (double)k1[i] - (double)w0[i];
        reduce += (double)p1[i] - (double)k1[i];
        tail += (double)x1[i] - (double)p1[i];
        period += (double)x1[i] - prev;
        ++n;
      }
      if (!n) {
        std::printf("%-12s m=%-3d no records (%d)\n", sh.name, m, nrec);
      } else {
        const double d = 1e3 * n;
        std::printf("%-12s m=%-3d cfg %d/%d/%d stages %d R=%d ctas/call %d | graph %.2f us/call | lead %+.2f spread %.2f "
                    "release %+.2f kloop %.2f reduce %.2f tail %.2f period %.2f | timer step %llu ns\n",
                    sh.name, m, ac.warps, ac.tile_nb, ac.split, ac.stages, b.R, ctas[1], us, lead / d, spread / d,
                    release / d, kloop / d, reduce / d, tail / d, period / d, gran);
      }
      CK(cudaGraphExecDestroy(exec));
      CK(cudaGraphDestroy(graph));
      free_shape(b);
    }
  }
  CK(cudaStreamDestroy(stream));
}
#endif

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "check";
  if (mode == "thread") {  // before any CUDA call of the main thread would not matter: the context is per thread
    first_call_in_thread();
    return g_failures ? 1 : 0;
  }
  if (mode == "capture") {
    first_call_in_thread(true);
    return g_failures ? 1 : 0;
  }
  if (mode == "profile") {
    profile(argc, argv);
    return 0;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, cc %d.%d\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
  if (mode == "check") check(false);
  else if (mode == "check-small") check(true);
  else if (mode == "bench") bench(false);
  else if (mode == "sweep") bench(true);
  else if (mode == "narrow") sweep_narrow();
  else if (mode == "mid") sweep_mid();
  else if (mode == "clusters") cluster_fit();
#ifdef EXP_TIMELINE
  else if (mode == "timeline") timeline();
#endif
  else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 1;
  }
  return g_failures ? 1 : 0;
}
