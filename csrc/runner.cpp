// The runner: argument checks shared by every config, config lookup and the default heuristic, launch.
// It never allocates and never synchronises, so w4a16_gemm can be captured in a CUDA graph.
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "heuristic.h"
#include "kernel_registry.h"
#include "w4a16/w4a16.h"

namespace w4a16 {

namespace {
thread_local std::string t_error_message;

struct DeviceProps {
  int sm_count = 0;
  int cc_major = 0;
  int cc_minor = 0;
  char name[256] = {};
};

constexpr int kMaxDevices = 64;
DeviceProps g_props[kMaxDevices];
std::once_flag g_props_once[kMaxDevices];
cudaError_t g_props_error[kMaxDevices];

// Device properties are queried once per device: cudaGetDeviceProperties costs tens of microseconds, far
// more than a decode-sized GEMM.
cudaError_t device_props(int device, const DeviceProps** out) {
  if (device < 0 || device >= kMaxDevices) return cudaErrorInvalidDevice;
  std::call_once(g_props_once[device], [device] {
    DeviceProps& p = g_props[device];
    cudaError_t err = cudaDeviceGetAttribute(&p.sm_count, cudaDevAttrMultiProcessorCount, device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&p.cc_major, cudaDevAttrComputeCapabilityMajor, device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&p.cc_minor, cudaDevAttrComputeCapabilityMinor, device);
    if (err == cudaSuccess) {
      cudaDeviceProp prop;
      err = cudaGetDeviceProperties(&prop, device);
      if (err == cudaSuccess) std::snprintf(p.name, sizeof(p.name), "%s", prop.name);
    }
    g_props_error[device] = err;
  });
  *out = &g_props[device];
  return g_props_error[device];
}

w4a16_status_t current_device_props(const DeviceProps** props) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = device_props(device, props);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a sticky-free error such as cudaErrorNoDevice
    set_error_message("no usable CUDA device: %s", cudaGetErrorString(err));
    return W4A16_NO_SM90_DEVICE;
  }
  if ((*props)->cc_major != 9 || (*props)->cc_minor != 0) {
    set_error_message("%s has compute capability %d.%d; w4a16-gemm's kernels need an SM90 GPU (H100/H200)",
                      (*props)->name, (*props)->cc_major, (*props)->cc_minor);
    return W4A16_NO_SM90_DEVICE;
  }
  return W4A16_OK;
}

// W4A16_PDL=0 in the environment turns programmatic dependent launch off for the whole process (a switch for
// A/B timing and for stacks whose kernels write our weights in flight); read once.
bool pdl_disabled_by_environment() {
  static const bool disabled = [] {
    const char* v = std::getenv("W4A16_PDL");
    return v && std::strcmp(v, "0") == 0;
  }();
  return disabled;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Rules every config shares; a failure here is the caller's mistake and gets a precise message.
// The problem (shape, group size) first: it needs no pointers.
w4a16_status_t check_problem(const w4a16_gemm_args_t* a) {
  if (!a) {
    set_error_message("args is NULL");
    return W4A16_INVALID_VALUE;
  }
  if (a->m < 0 || a->n < 8 || a->n % 8 || a->k < 64 || a->k % 64 || a->m > INT32_MAX || a->n > INT32_MAX ||
      a->k > INT32_MAX) {
    set_error_message("unsupported shape m=%lld n=%lld k=%lld: need m >= 0, n a positive multiple of 8, "
                      "k a positive multiple of 64 (each below 2^31)",
                      (long long)a->m, (long long)a->n, (long long)a->k);
    return W4A16_INVALID_SHAPE;
  }
  const bool group_ok = (a->group_size == 64 || a->group_size == 128 || a->group_size == a->k) &&
                        a->group_size > 0 && a->k % a->group_size == 0;
  if (!group_ok) {
    set_error_message("group_size=%lld is not supported for k=%lld: use 64, 128 or k (per-column), dividing k",
                      (long long)a->group_size, (long long)a->k);
    return W4A16_UNSUPPORTED_GROUP;
  }
  return W4A16_OK;
}

w4a16_status_t check_args(const w4a16_gemm_args_t* a) {
  if (w4a16_status_t st = check_problem(a)) return st;
  if (a->flags & ~static_cast<uint32_t>(W4A16_FLAG_ALL)) {
    set_error_message("flags=0x%x has bits this version does not know (known: 0x%x)", a->flags,
                      static_cast<unsigned>(W4A16_FLAG_ALL));
    return W4A16_INVALID_VALUE;
  }
  if (a->m == 0) return W4A16_OK;  // nothing to read or write
  if (!a->x || !a->packed_weight || !a->scales || !a->out) {
    set_error_message("x, packed_weight, scales and out must not be NULL");
    return W4A16_INVALID_VALUE;
  }
  if (a->ldx < a->k || a->ldo < a->n) {
    set_error_message("ldx=%lld must be >= k=%lld and ldo=%lld >= n=%lld", (long long)a->ldx, (long long)a->k,
                      (long long)a->ldo, (long long)a->n);
    return W4A16_INVALID_SHAPE;
  }
  if (a->ldx % 8 || a->ldo % 8 || !aligned16(a->x) || !aligned16(a->out) || !aligned16(a->packed_weight) ||
      !aligned16(a->scales) || (a->zeros && !aligned16(a->zeros)) || (a->bias && !aligned16(a->bias))) {
    set_error_message("TMA needs 16-byte alignment: x, out, packed_weight, scales, zeros and bias must be "
                      "16-byte aligned and ldx, ldo multiples of 8 elements (ldx=%lld ldo=%lld)",
                      (long long)a->ldx, (long long)a->ldo);
    return W4A16_MISALIGNED;
  }
  return W4A16_OK;
}

w4a16_status_t resolve_config(const w4a16_gemm_args_t* a, int config, int sm_count, const KernelEntry** entry) {
  if (config == W4A16_CONFIG_AUTO) {
    config = select_config(*a, sm_count);
    if (config < 0) {
      set_error_message("no kernel in this build serves %s weights", a->zeros ? "zero-point" : "scale-only");
      return W4A16_NO_KERNEL_IN_BUILD;
    }
  }
  if (config < 0 || config >= kNumKernels) {
    set_error_message("config %d is not in this build (it has %d configs)", config, kNumKernels);
    return W4A16_NO_KERNEL_IN_BUILD;
  }
  const KernelEntry* e = kKernels[config];
  if (static_cast<bool>(e->info.zeros) != (a->zeros != nullptr)) {
    set_error_message("config %s is for %s weights but the weights %s zero points", e->info.name,
                      e->info.zeros ? "zero-point" : "scale-only", a->zeros ? "have" : "have no");
    return W4A16_CANNOT_IMPLEMENT;
  }
  *entry = e;
  return W4A16_OK;
}

// What every entry point does first: the shared argument checks, the device, the config.
w4a16_status_t prepare_call(const w4a16_gemm_args_t* args, int config, const DeviceProps** props,
                            const KernelEntry** entry) {
  if (w4a16_status_t st = check_args(args)) return st;
  if (w4a16_status_t st = current_device_props(props)) return st;
  return resolve_config(args, config, (*props)->sm_count, entry);
}

}  // namespace

void set_error_message(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  t_error_message = buf;
}

}  // namespace w4a16

using namespace w4a16;

extern "C" {

const char* w4a16_status_string(w4a16_status_t status) {
  switch (status) {
    case W4A16_OK: return "W4A16_OK";
    case W4A16_INVALID_SHAPE: return "W4A16_INVALID_SHAPE";
    case W4A16_MISALIGNED: return "W4A16_MISALIGNED";
    case W4A16_UNSUPPORTED_GROUP: return "W4A16_UNSUPPORTED_GROUP";
    case W4A16_NO_KERNEL_IN_BUILD: return "W4A16_NO_KERNEL_IN_BUILD";
    case W4A16_CANNOT_IMPLEMENT: return "W4A16_CANNOT_IMPLEMENT";
    case W4A16_INSUFFICIENT_WORKSPACE: return "W4A16_INSUFFICIENT_WORKSPACE";
    case W4A16_NO_SM90_DEVICE: return "W4A16_NO_SM90_DEVICE";
    case W4A16_CUDA_ERROR: return "W4A16_CUDA_ERROR";
    case W4A16_INVALID_VALUE: return "W4A16_INVALID_VALUE";
  }
  return "W4A16_UNKNOWN_STATUS";
}

const char* w4a16_last_error_message(void) { return t_error_message.c_str(); }

const char* w4a16_version(void) {
#define W4A16_STR2(x) #x
#define W4A16_STR(x) W4A16_STR2(x)
  return W4A16_STR(W4A16_VERSION_MAJOR) "." W4A16_STR(W4A16_VERSION_MINOR) "." W4A16_STR(W4A16_VERSION_PATCH);
}

int w4a16_num_configs(void) { return kNumKernels; }

w4a16_status_t w4a16_get_config_info(int config, w4a16_config_info_t* info) {
  if (config < 0 || config >= kNumKernels || !info) {
    set_error_message("config %d is not in this build", config);
    return W4A16_INVALID_VALUE;
  }
  *info = kKernels[config]->info;
  return W4A16_OK;
}

int w4a16_find_config(const char* name) {
  if (!name) return -1;
  for (int i = 0; i < kNumKernels; ++i)
    if (std::strcmp(kKernels[i]->info.name, name) == 0) return i;
  return -1;
}

w4a16_status_t w4a16_check_device(int device, char* name, size_t name_len, int* sm_count) {
  const DeviceProps* props = nullptr;
  cudaError_t err = device_props(device, &props);
  if (err != cudaSuccess) {
    cudaGetLastError();
    set_error_message("no usable CUDA device %d: %s", device, cudaGetErrorString(err));
    return W4A16_NO_SM90_DEVICE;
  }
  if (name && name_len) std::snprintf(name, name_len, "%s", props->name);
  if (sm_count) *sm_count = props->sm_count;
  if (props->cc_major != 9 || props->cc_minor != 0) {
    set_error_message("%s has compute capability %d.%d; w4a16-gemm's kernels need an SM90 GPU (H100/H200)",
                      props->name, props->cc_major, props->cc_minor);
    return W4A16_NO_SM90_DEVICE;
  }
  return W4A16_OK;
}

w4a16_status_t w4a16_select_config(const w4a16_gemm_args_t* args, int sm_count, int* config) {
  if (!config) return W4A16_INVALID_VALUE;
  if (w4a16_status_t st = check_problem(args)) return st;
  if (sm_count <= 0) {
    const DeviceProps* props = nullptr;
    if (w4a16_status_t st = current_device_props(&props)) return st;
    sm_count = props->sm_count;
  }
  *config = select_config(*args, sm_count);
  if (*config < 0) {
    set_error_message("no kernel in this build serves %s weights", args->zeros ? "zero-point" : "scale-only");
    return W4A16_NO_KERNEL_IN_BUILD;
  }
  return W4A16_OK;
}

w4a16_status_t w4a16_describe_launch(const w4a16_gemm_args_t* args, int config, int sm_count, char* text,
                                     size_t text_len) {
  if (!text || text_len == 0) {
    set_error_message("text must be a buffer of at least one byte (512 always suffice)");
    return W4A16_INVALID_VALUE;
  }
  text[0] = '\0';
  if (w4a16_status_t st = check_problem(args)) return st;
  const bool this_device = sm_count <= 0;
  if (this_device) {
    const DeviceProps* props = nullptr;
    if (w4a16_status_t st = current_device_props(&props)) return st;
    sm_count = props->sm_count;
  }
  const KernelEntry* entry = nullptr;
  if (w4a16_status_t st = resolve_config(args, config, sm_count, &entry)) return st;
  const w4a16_config_info_t& info = entry->info;
  std::string line = info.name;
  if (args->m == 0) {
    line += ": nothing to launch (m = 0)";
  } else if (info.schedule == W4A16_SCHEDULE_DECODE) {
    std::string plan;
    if (w4a16_status_t st = decode_entry_describe(*args, sm_count, this_device, &plan)) return st;
    line += ": " + plan;
  } else {
    const long long tiles = (args->n + info.tile_n - 1) / info.tile_n * ((args->m + info.tile_m - 1) / info.tile_m);
    char buf[384];
    std::snprintf(buf, sizeof(buf), ": CUTLASS SM90 mixed-input GEMM (%s%s), tiles of %d features x %d tokens x %d k in "
                  "clusters of %d x %d: %lld output tile%s on %d SMs",
                  info.schedule == W4A16_SCHEDULE_PINGPONG ? "ping-pong" : "cooperative",
                  info.stream_k ? ", stream-K" : "", info.tile_n, info.tile_m, info.tile_k, info.cluster_n,
                  info.cluster_m, tiles, tiles == 1 ? "" : "s", sm_count);
    line += buf;
  }
  std::snprintf(text, text_len, "%s", line.c_str());
  if (line.size() >= text_len) {
    set_error_message("text_len=%zu is too short: the description takes %zu bytes", text_len, line.size() + 1);
    return W4A16_INVALID_VALUE;
  }
  return W4A16_OK;
}

w4a16_status_t w4a16_can_implement(const w4a16_gemm_args_t* args, int config) {
  const DeviceProps* props = nullptr;
  const KernelEntry* entry = nullptr;
  if (w4a16_status_t st = prepare_call(args, config, &props, &entry)) return st;
  if (args->m == 0) return W4A16_OK;
  return entry->can_implement(*args, props->sm_count);
}

w4a16_status_t w4a16_workspace_size(const w4a16_gemm_args_t* args, int config, size_t* bytes) {
  if (!bytes) return W4A16_INVALID_VALUE;
  *bytes = 0;
  const DeviceProps* props = nullptr;
  const KernelEntry* entry = nullptr;
  if (w4a16_status_t st = prepare_call(args, config, &props, &entry)) return st;
  if (args->m > 0) *bytes = entry->workspace_size(*args, props->sm_count);
  return W4A16_OK;
}

w4a16_status_t w4a16_gemm(const w4a16_gemm_args_t* args, int config, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream) {
  const DeviceProps* props = nullptr;
  const KernelEntry* entry = nullptr;
  if (w4a16_status_t st = prepare_call(args, config, &props, &entry)) return st;
  if (args->m == 0) return W4A16_OK;
  if (w4a16_status_t st = entry->can_implement(*args, props->sm_count)) return st;
  const size_t needed = entry->workspace_size(*args, props->sm_count);
  if (needed > workspace_bytes || (needed > 0 && !workspace)) {
    set_error_message("config %s needs %zu bytes of workspace, got %zu", entry->info.name, needed,
                      workspace ? workspace_bytes : size_t(0));
    return W4A16_INSUFFICIENT_WORKSPACE;
  }
  w4a16_gemm_args_t launch_args = *args;
  if (pdl_disabled_by_environment()) launch_args.flags |= W4A16_FLAG_NO_PDL;
  w4a16_status_t st = entry->run(launch_args, props->sm_count, workspace, stream);
  if (st == W4A16_OK) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
      set_error_message("launch of %s failed: %s", entry->info.name, cudaGetErrorString(err));
      return W4A16_CUDA_ERROR;
    }
  }
  return st;
}

}  // extern "C"
