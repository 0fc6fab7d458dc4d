// Internal: what each generated instantiation registers with the runner.
#pragma once

#include <cstddef>
#include <string>

#include "w4a16/w4a16.h"

namespace w4a16 {

// The first bytes of every workspace a config asks for hold the decode kernel's split-K counters
// (DecodeConfig::global_fixup), which must read zero when a call starts: the caller zero-fills a workspace once when
// it allocates it (w4a16.h) and every call leaves them at zero. The CUTLASS configs take the workspace after them,
// so one workspace serves every config on a stream (python/w4a16_gemm/ops.py keeps one per stream) and a stream-K
// call, whose fix-up flags CUTLASS resets per call and leaves set, never touches them.
constexpr size_t kWorkspaceCounterBytes = 16384;

struct KernelEntry {
  w4a16_config_info_t info;
  // Returns OK or CANNOT_IMPLEMENT; shape/alignment/group rules common to all configs are checked before.
  w4a16_status_t (*can_implement)(const w4a16_gemm_args_t& args, int sm_count);
  size_t (*workspace_size)(const w4a16_gemm_args_t& args, int sm_count);
  w4a16_status_t (*run)(const w4a16_gemm_args_t& args, int sm_count, void* workspace, cudaStream_t stream);
};

// Defined in the generated registry.cpp: the configs of this build, in kernels/configs.py order.
extern const KernelEntry* const kKernels[];
extern const int kNumKernels;

// The decode kernel (csrc/decode_gemm.cu) behind its registry entries (csrc/decode_entry.cpp).
w4a16_status_t decode_entry_can_implement(const w4a16_gemm_args_t& args, int sm_count);
size_t decode_entry_workspace_size(const w4a16_gemm_args_t& args, int sm_count);
w4a16_status_t decode_entry_run(const w4a16_gemm_args_t& args, int sm_count, void* workspace, cudaStream_t stream);
// The plan decode_entry_run launches for args' problem (w4a16_describe_launch), with the current device's cluster
// residency (device_fit) or an H200's scaled to sm_count; CANNOT_IMPLEMENT where the decode kernel does not serve it.
w4a16_status_t decode_entry_describe(const w4a16_gemm_args_t& args, int sm_count, bool device_fit, std::string* line);

// Thread-local detail for w4a16_last_error_message().
void set_error_message(const char* fmt, ...);

}  // namespace w4a16
