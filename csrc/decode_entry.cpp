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

w4a16_status_t decode_entry_run(const w4a16_gemm_args_t& args, int sm_count, void* workspace, cudaStream_t stream) {
  return decode_gemm(args, sm_count, workspace, stream);
}

}  // namespace w4a16
