// w4a16_only_test: run one W4A16 GEMM on random data, check it against a naive GPU reference, time it.
//
// Exit codes: 0 passed, 1 result mismatch, 2 usage error, 3 no SM90 GPU, 4 CUDA/runtime failure.
// Every failure prints one line "w4a16_only_test: <reason>" on stderr.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "reference.cuh"
#include "w4a16/w4a16.h"

namespace {

enum ExitCode { kPassed = 0, kMismatch = 1, kUsage = 2, kNoGpu = 3, kRuntime = 4 };

[[noreturn]] void fail(int code, const std::string& reason) {
  std::fprintf(stderr, "w4a16_only_test: %s\n", reason.c_str());
  std::exit(code);
}

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(kRuntime, std::string(what) + ": " + cudaGetErrorString(err));
}

void check_status(w4a16_status_t st, const char* what) {
  if (st == W4A16_OK) return;
  const int code = st == W4A16_NO_SM90_DEVICE ? kNoGpu
                   : (st == W4A16_CUDA_ERROR || st == W4A16_INSUFFICIENT_WORKSPACE) ? kRuntime
                                                                                     : kUsage;
  fail(code, std::string(what) + ": " + w4a16_status_string(st) + ": " + w4a16_last_error_message());
}

const char* kUsageText =
    "usage: w4a16_only_test [M N K] [--group-size G] [--zeros] [--iters I] [--warmup W]\n"
    "                       [--config ID|NAME|auto] [--list-configs] [--seed S] [--no-check] [--json]\n"
    "\n"
    "Runs out[M,N] = x[M,K] @ dequant(q[K,N], s, z) + bias on random data with w4a16-gemm's SM90 kernels,\n"
    "checks it against a naive fp32 GPU reference and reports the median time.\n"
    "  M N K            problem size (default 512 1024 1024); N % 8 == 0, K % 64 == 0, K % G == 0\n"
    "  --group-size G   64, 128 (default) or K (per-column scales)\n"
    "  --zeros          weights with zero points (w = q*s + z)\n"
    "  --iters I        timed iterations (default 20); --warmup W untimed ones first (default 5)\n"
    "  --config C       index or name from --list-configs, or auto (default: the heuristic)\n"
    "  --seed S         random seed (default 2026)\n"
    "  --no-check       skip the reference check\n"
    "  --json           print one JSON object instead of text\n"
    "Exit: 0 passed, 1 mismatch, 2 usage error, 3 no SM90 GPU, 4 CUDA error.\n";

struct Options {
  int64_t m = 512, n = 1024, k = 1024;
  int64_t group_size = 128;
  bool zeros = false;
  int iters = 20, warmup = 5;
  std::string config = "auto";
  bool list_configs = false;
  uint64_t seed = 2026;
  bool check = true;
  bool json = false;
};

int64_t parse_int(const char* text, const char* what, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno || !end || *end || end == text) fail(kUsage, std::string(what) + " must be an integer, got '" + text + "'");
  if (v < lo || v > hi)
    fail(kUsage, std::string(what) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + text);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  std::vector<const char*> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) fail(kUsage, std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsageText, stdout);
      std::exit(0);
    } else if (a == "--group-size") {
      o.group_size = parse_int(value("--group-size"), "--group-size", 1, INT32_MAX);
    } else if (a == "--zeros") {
      o.zeros = true;
    } else if (a == "--iters") {
      o.iters = static_cast<int>(parse_int(value("--iters"), "--iters", 1, 1000000));
    } else if (a == "--warmup") {
      o.warmup = static_cast<int>(parse_int(value("--warmup"), "--warmup", 0, 1000000));
    } else if (a == "--config") {
      o.config = value("--config");
    } else if (a == "--list-configs") {
      o.list_configs = true;
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(parse_int(value("--seed"), "--seed", 0, INT64_MAX));
    } else if (a == "--no-check") {
      o.check = false;
    } else if (a == "--json") {
      o.json = true;
    } else if (!a.empty() && a[0] == '-' && !(a.size() > 1 && std::isdigit(static_cast<unsigned char>(a[1])))) {
      fail(kUsage, "unknown option '" + a + "' (see --help)");
    } else {
      positional.push_back(argv[i]);
    }
  }
  if (!positional.empty() && positional.size() != 3)
    fail(kUsage, "expected M N K (three integers) or none, got " + std::to_string(positional.size()));
  if (positional.size() == 3) {
    o.m = parse_int(positional[0], "M", 1, INT32_MAX);
    o.n = parse_int(positional[1], "N", 1, INT32_MAX);
    o.k = parse_int(positional[2], "K", 1, INT32_MAX);
  }
  return o;
}

int resolve_config(const std::string& text) {
  if (text == "auto") return W4A16_CONFIG_AUTO;
  bool numeric = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(c); });
  int index = numeric ? static_cast<int>(parse_int(text.c_str(), "--config", 0, INT32_MAX)) : w4a16_find_config(text.c_str());
  if (index < 0 || index >= w4a16_num_configs())
    fail(kUsage, "--config '" + text + "' is not in this build (see --list-configs)");
  return index;
}

void list_configs() {
  for (int i = 0; i < w4a16_num_configs(); ++i) {
    w4a16_config_info_t info;
    check_status(w4a16_get_config_info(i, &info), "config info");
    std::printf("%3d  %s\n", i, info.name);
  }
}

// A pointer-shaped placeholder for checks that look at alignment only.
const void* kProbePointer = reinterpret_cast<const void*>(uintptr_t(256));

}  // namespace

int run(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.list_configs) {
    list_configs();
    return 0;
  }
  const int config = resolve_config(o.config);

  // Problem rules first, with placeholder pointers: a bad shape is a usage error even without a GPU.
  w4a16_gemm_args_t args{};
  args.m = o.m;
  args.n = o.n;
  args.k = o.k;
  args.group_size = o.group_size;
  args.x = args.packed_weight = args.scales = args.bias = kProbePointer;
  args.zeros = o.zeros ? kProbePointer : nullptr;
  args.out = const_cast<void*>(kProbePointer);
  args.ldx = o.k;
  args.ldo = o.n;
  args.alpha = 1.0f;

  // Shape/group errors are reported before device errors, so they are usage errors on any machine.
  w4a16_status_t st = w4a16_can_implement(&args, config);
  if (st != W4A16_NO_SM90_DEVICE) check_status(st, "problem not supported");
  int device = 0;
  char gpu_name[256] = "none";
  int sm_count = 0;
  cudaError_t dev_err = cudaGetDevice(&device);
  if (dev_err != cudaSuccess) fail(kNoGpu, std::string("no SM90 GPU: ") + cudaGetErrorString(dev_err));
  check_status(w4a16_check_device(device, gpu_name, sizeof(gpu_name), &sm_count), "no SM90 GPU");
  check_status(st, "problem not supported");

  int chosen = config;
  if (chosen == W4A16_CONFIG_AUTO) check_status(w4a16_select_config(&args, sm_count, &chosen), "select config");
  w4a16_config_info_t info;
  check_status(w4a16_get_config_info(chosen, &info), "config info");
  char launch[512];  // what this config launches here (its tiles and grid; the decode kernel's plan)
  check_status(w4a16_describe_launch(&args, chosen, 0, launch, sizeof(launch)), "describe launch");
  const char* name_end = std::strchr(launch, ':');  // "<config name>: <plan>"
  const char* plan = name_end ? name_end + 2 : launch;

  // Random problem (fixed seed): x in [-1, 1], q uniform int4, scales sized so |out| stays O(1..10).
  const int64_t m = o.m, n = o.n, k = o.k, groups = k / o.group_size;
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<float> unit(-1.f, 1.f);
  std::uniform_int_distribution<int> int4(-8, 7);
  std::vector<__half> h_x(m * k), h_scales(groups * n), h_zeros(o.zeros ? groups * n : 0), h_bias(n);
  std::vector<int8_t> h_q(k * n);
  for (auto& v : h_x) v = __float2half(unit(rng));
  for (auto& v : h_q) v = static_cast<int8_t>(int4(rng));
  const float scale_base = 1.f / (4.f * std::sqrt(static_cast<float>(k)));
  for (auto& v : h_scales) v = __float2half(scale_base * (1.f + 0.5f * unit(rng)));
  for (auto& v : h_zeros) v = __float2half(scale_base * 4.f * unit(rng));
  for (auto& v : h_bias) v = __float2half(unit(rng));
  std::vector<uint8_t> h_packed(w4a16_packed_weight_bytes(k, n));
  check_status(w4a16_pack_weight(h_q.data(), k, n, h_packed.data()), "pack weights");

  __half *d_x, *d_scales, *d_zeros = nullptr, *d_bias, *d_out;
  int8_t* d_q;
  void* d_packed;
  float *d_w, *d_ref;
  check_cuda(cudaMalloc(&d_x, m * k * sizeof(__half)), "cudaMalloc x");
  check_cuda(cudaMalloc(&d_scales, groups * n * sizeof(__half)), "cudaMalloc scales");
  if (o.zeros) check_cuda(cudaMalloc(&d_zeros, groups * n * sizeof(__half)), "cudaMalloc zeros");
  check_cuda(cudaMalloc(&d_bias, n * sizeof(__half)), "cudaMalloc bias");
  check_cuda(cudaMalloc(&d_out, m * n * sizeof(__half)), "cudaMalloc out");
  check_cuda(cudaMalloc(&d_packed, h_packed.size()), "cudaMalloc packed weight");
  check_cuda(cudaMemcpy(d_x, h_x.data(), m * k * sizeof(__half), cudaMemcpyHostToDevice), "copy x");
  check_cuda(cudaMemcpy(d_scales, h_scales.data(), groups * n * sizeof(__half), cudaMemcpyHostToDevice), "copy scales");
  if (o.zeros) check_cuda(cudaMemcpy(d_zeros, h_zeros.data(), groups * n * sizeof(__half), cudaMemcpyHostToDevice), "copy zeros");
  check_cuda(cudaMemcpy(d_bias, h_bias.data(), n * sizeof(__half), cudaMemcpyHostToDevice), "copy bias");
  check_cuda(cudaMemcpy(d_packed, h_packed.data(), h_packed.size(), cudaMemcpyHostToDevice), "copy packed weight");
  // Poison: NaN everywhere, so an element the kernel never writes fails the check.
  check_cuda(cudaMemset(d_out, 0xFF, m * n * sizeof(__half)), "poison out");

  args.x = d_x;
  args.packed_weight = d_packed;
  args.scales = d_scales;
  args.zeros = d_zeros;
  args.bias = d_bias;
  args.out = d_out;

  size_t ws_bytes = 0;
  check_status(w4a16_workspace_size(&args, chosen, &ws_bytes), "workspace size");
  void* d_ws = nullptr;
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "create stream");
  if (ws_bytes) {
    check_cuda(cudaMalloc(&d_ws, ws_bytes), "cudaMalloc workspace");
    check_cuda(cudaMemsetAsync(d_ws, 0, ws_bytes, stream), "zero the workspace");  // (w4a16.h: zeroed once)
  }
  check_status(w4a16_gemm(&args, chosen, d_ws, ws_bytes, stream), "gemm");
  check_cuda(cudaStreamSynchronize(stream), "first run");

  double rel_err = -1.0;
  int64_t non_finite = 0;
  bool passed = true;
  if (o.check) {
    check_cuda(cudaMalloc(&d_q, k * n), "cudaMalloc q");
    check_cuda(cudaMalloc(&d_w, k * n * sizeof(float)), "cudaMalloc reference weights");
    check_cuda(cudaMalloc(&d_ref, m * n * sizeof(float)), "cudaMalloc reference out");
    check_cuda(cudaMemcpy(d_q, h_q.data(), k * n, cudaMemcpyHostToDevice), "copy q");
    w4a16_cli::dequantize_kernel<<<1024, 256, 0, stream>>>(d_q, d_scales, d_zeros, k, n, o.group_size, d_w);
    check_cuda(cudaGetLastError(), "dequantize kernel");
    dim3 block(w4a16_cli::kRefTile, w4a16_cli::kRefTile);
    dim3 grid((n + w4a16_cli::kRefTile - 1) / w4a16_cli::kRefTile, (m + w4a16_cli::kRefTile - 1) / w4a16_cli::kRefTile);
    w4a16_cli::reference_gemm_kernel<<<grid, block, 0, stream>>>(d_x, d_w, d_bias, 1.0f, m, n, k, d_ref);
    check_cuda(cudaGetLastError(), "reference kernel");
    check_cuda(cudaStreamSynchronize(stream), "reference");
    std::vector<float> h_ref(m * n);
    std::vector<__half> h_out(m * n);
    check_cuda(cudaMemcpy(h_ref.data(), d_ref, m * n * sizeof(float), cudaMemcpyDeviceToHost), "copy reference");
    check_cuda(cudaMemcpy(h_out.data(), d_out, m * n * sizeof(__half), cudaMemcpyDeviceToHost), "copy out");
    double diff2 = 0, ref2 = 0;
    for (int64_t i = 0; i < m * n; ++i) {
      const double o_i = __half2float(h_out[i]), r_i = h_ref[i];
      if (!std::isfinite(o_i)) ++non_finite;
      diff2 += (o_i - r_i) * (o_i - r_i);
      ref2 += r_i * r_i;
    }
    rel_err = std::sqrt(diff2 / std::max(ref2, 1e-30));
    passed = non_finite == 0 && rel_err < 2e-3;
    cudaFree(d_q);
    cudaFree(d_w);
    cudaFree(d_ref);
  }

  // Timing: warm-up, then one event pair per call; the median resists clock and scheduling noise.
  for (int i = 0; i < o.warmup; ++i) check_status(w4a16_gemm(&args, chosen, d_ws, ws_bytes, stream), "gemm");
  std::vector<cudaEvent_t> events(2 * o.iters);
  for (auto& e : events) check_cuda(cudaEventCreate(&e), "create event");
  for (int i = 0; i < o.iters; ++i) {
    check_cuda(cudaEventRecord(events[2 * i], stream), "record event");
    check_status(w4a16_gemm(&args, chosen, d_ws, ws_bytes, stream), "gemm");
    check_cuda(cudaEventRecord(events[2 * i + 1], stream), "record event");
  }
  check_cuda(cudaStreamSynchronize(stream), "timed runs");
  std::vector<float> ms(o.iters);
  for (int i = 0; i < o.iters; ++i) check_cuda(cudaEventElapsedTime(&ms[i], events[2 * i], events[2 * i + 1]), "elapsed time");
  std::sort(ms.begin(), ms.end());
  const double median_us = 1e3 * (o.iters % 2 ? ms[o.iters / 2] : 0.5 * (ms[o.iters / 2 - 1] + ms[o.iters / 2]));
  const double flops = 2.0 * m * n * k;
  const double bytes = n * k / 2.0 + groups * n * 2.0 * (o.zeros ? 2 : 1) + m * k * 2.0 + m * n * 2.0 + n * 2.0;
  const double tflops = flops / (median_us * 1e-6) / 1e12;
  const double gbps = bytes / (median_us * 1e-6) / 1e9;

  const char* verdict = !o.check ? "UNCHECKED" : passed ? "PASSED" : "FAILED";
  if (o.json) {
    std::printf("{\"gpu\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"group_size\": %lld, \"zeros\": %s, "
                "\"config\": \"%s\", \"launch\": \"%s\", \"median_us\": %.3f, \"tflops\": %.3f, \"gbps\": %.1f, \"rel_err\": %.3e, "
                "\"non_finite\": %lld, \"result\": \"%s\"}\n",
                gpu_name, (long long)m, (long long)n, (long long)k, (long long)o.group_size, o.zeros ? "true" : "false",
                info.name, plan, median_us, tflops, gbps, rel_err, (long long)non_finite, verdict);
  } else {
    std::printf("GPU:     %s (%d SMs)\n", gpu_name, sm_count);
    std::printf("Problem: M=%lld N=%lld K=%lld group_size=%lld %s\n", (long long)m, (long long)n, (long long)k,
                (long long)o.group_size, o.zeros ? "scale+zero" : "scale-only");
    std::printf("Config:  %s%s\n", info.name, config == W4A16_CONFIG_AUTO ? " (heuristic)" : "");
    std::printf("Launch:  %s\n", plan);
    std::printf("Time:    %.2f us (median of %d)  %.1f TFLOP/s  %.0f GB/s\n", median_us, o.iters, tflops, gbps);
    if (o.check)
      std::printf("Check:   |out-ref|/|ref| = %.3e, non-finite %lld -> %s\n", rel_err, (long long)non_finite, verdict);
    else
      std::printf("Check:   skipped (--no-check)\n");
  }
  for (auto& e : events) cudaEventDestroy(e);
  cudaStreamDestroy(stream);
  cudaFree(d_x);
  cudaFree(d_scales);
  cudaFree(d_zeros);
  cudaFree(d_bias);
  cudaFree(d_out);
  cudaFree(d_packed);
  cudaFree(d_ws);
  if (o.check && !passed) {
    std::fprintf(stderr, "w4a16_only_test: result mismatch: rel_err %.3e (limit 2e-3), %lld non-finite outputs\n",
                 rel_err, (long long)non_finite);
    return kMismatch;
  }
  return kPassed;
}

int main(int argc, char** argv) {
  // A problem too large for host memory (the random inputs and the reference live on the host too) must end
  // with exit 4 and one line, not std::terminate.
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    fail(kRuntime, "out of host memory for a problem of this size");
  } catch (const std::exception& e) {
    fail(kRuntime, std::string("unexpected error: ") + e.what());
  }
}
