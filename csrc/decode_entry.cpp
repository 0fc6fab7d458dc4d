// Registry glue for the decode kernel: the same three functions every CUTLASS instantiation registers.
#include "decode_gemm.cuh"
#include "kernel_registry.h"

namespace w4a16 {

w4a16_status_t decode_entry_can_implement(const w4a16_gemm_args_t& args, int /*sm_count*/) {
  if (decode_supports(args)) return W4A16_OK;
  set_error_message("the decode kernel serves 1 <= m <= %d (got m=%lld) with 16-byte aligned operands",
                    kDecodeMaxM, (long long)args.m);
  return W4A16_CANNOT_IMPLEMENT;
}

size_t decode_entry_workspace_size(const w4a16_gemm_args_t& args, int sm_count) {
  return decode_workspace_size(args, sm_count);
}

w4a16_status_t decode_entry_describe(const w4a16_gemm_args_t& args, int sm_count, bool device_fit,
                                     std::string* line) {
  // The problem only (decode_supports checks the operands too, which a description does not have).
  if (!decode_serves_problem(args)) {
    set_error_message("the decode kernel serves 1 <= m <= %d, n and k <= 2^30, group 64, 128 or k (got m=%lld n=%lld "
                      "k=%lld group=%lld)", kDecodeMaxM, (long long)args.m, (long long)args.n, (long long)args.k,
                      (long long)args.group_size);
    return W4A16_CANNOT_IMPLEMENT;
  }
  if (device_fit) {
    const DecodeClusterFit fit = decode_cluster_fit(sm_count);
    *line = describe_decode_config(args, decode_select_config(args, sm_count, &fit));
  } else {
    *line = describe_decode_config(args, decode_select_config(args, sm_count));
  }
  return W4A16_OK;
}

w4a16_status_t decode_entry_run(const w4a16_gemm_args_t& args, int sm_count, void* workspace, cudaStream_t stream) {
  return decode_gemm(args, sm_count, workspace, stream);
}

}  // namespace w4a16
