// The one CUTLASS template chain behind every generated kernel (kernels/generate.py instantiates it).
//
// CUTLASS's SM90 mixed-input collective only sources the narrow operand from registers (RS WGMMA), so the
// int4 weights must be operand A. We therefore compute the transposed problem
//     out^T[n, m] = sum_k W^T[n, k] * x^T[k, m]
// with CUTLASS (M, N, K) = (n, m, k): A = packed weights (K-major int4, reordered, weight_layout.hpp),
// B = x read in place (x[m, k] row-major is a K-major B), D = out^T column-major, i.e. out row-major.
// Swapping here rather than letting the collective swap keeps the TMA epilogue (it cannot transpose).
//
// Limits inherited from the collective (checked by its can_implement, which the runner always calls):
//   - A is K-major int4 and B K-major fp16, both 16-byte aligned (k % 32, ldx % 8, n % 8);
//   - scales (and zeros) are MN-major: s[k / g, n] with n contiguous, exactly the user's layout;
//   - group_size % tile_k == 0 or group_size == k;
//   - D's leading dimension ldo % 8 == 0.
#pragma once

#include <cuda_runtime_api.h>

#include <mutex>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"

#include "heuristic.h"
#include "kernel_registry.h"
#include "weight_layout.hpp"

namespace w4a16 {

// One lock for every instantiation's host-side descriptor setup (see run()); an inline function's static is
// a single object across the library's translation units.
#ifdef CUTLASS_ENABLE_GDC_FOR_SM90
constexpr bool kGdcCompiled = true;
#else
constexpr bool kGdcCompiled = false;
#endif

inline std::mutex& descriptor_mutex() {
  static std::mutex m;
  return m;
}

// StreamK: CUTLASS's stream-K tile scheduler (cooperative only) instead of the plain persistent one. It lets
// a problem with fewer output tiles than SMs split K across CTAs (deterministic fixed-order reduction in the
// workspace), which is what narrow layers at moderate M need.
template <int TileN, int TileM, int ClusterN, int ClusterM, bool Pingpong, bool Zeros, bool StreamK = false>
struct Sm90W4A16Gemm {
  static_assert(!(StreamK && Pingpong), "CUTLASS's stream-K scheduler needs the cooperative schedule");
  using ElementX = cutlass::half_t;
  using ElementQ = cutlass::int4b_t;
  using ElementScale = cutlass::half_t;
  using ElementOut = cutlass::half_t;
  using ElementAccumulator = float;

  using TileShape = cute::Shape<cute::Int<TileN>, cute::Int<TileM>, cute::_64>;
  using ClusterShape = cute::Shape<cute::Int<ClusterN>, cute::Int<ClusterM>, cute::_1>;
  using KernelSchedule = std::conditional_t<Pingpong, cutlass::gemm::KernelTmaWarpSpecializedPingpong,
                                            cutlass::gemm::KernelTmaWarpSpecializedCooperative>;
  using EpilogueSchedule = std::conditional_t<Pingpong, cutlass::epilogue::TmaWarpSpecialized,
                                              cutlass::epilogue::TmaWarpSpecializedCooperative>;

  // D = alpha * acc + bias[row]; in the swapped problem a row is an output feature n. No C operand (void):
  // no smem or loads are spent on a source we never have.
  using Fusion = cutlass::epilogue::fusion::LinCombPerRowBias<ElementOut, float, cutlass::half_t, ElementOut, float>;
  static constexpr int kAlignOut = 8;  // 16 bytes of fp16
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, ElementAccumulator, float,
      void, cutlass::layout::ColumnMajor, kAlignOut,
      ElementOut, cutlass::layout::ColumnMajor, kAlignOut,
      EpilogueSchedule, Fusion>::CollectiveOp;

  using MainloopElementA = std::conditional_t<Zeros, cute::tuple<ElementQ, ElementScale, ElementScale>,
                                              cute::tuple<ElementQ, ElementScale>>;
  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp,
      MainloopElementA, PackedWeightLayout, 32,            // 32 int4 = 16 bytes
      ElementX, cutlass::layout::ColumnMajor, 8,           // x[m, k] row-major is a K-major B
      ElementAccumulator, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      KernelSchedule>::CollectiveOp;

  using TileScheduler = std::conditional_t<StreamK, cutlass::gemm::StreamKScheduler, void>;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, CollectiveMainloop,
                                                      CollectiveEpilogue, TileScheduler>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Gemm::Arguments make_arguments(const w4a16_gemm_args_t& a, int sm_count) {
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
    using StrideScale = typename CollectiveMainloop::StrideScale;
    const int m = static_cast<int>(a.m), n = static_cast<int>(a.n), k = static_cast<int>(a.k);
    const int n_padded = (n + 15) / 16 * 16;
    const int scale_k = static_cast<int>(a.k / a.group_size);

    StrideB stride_x = cute::make_stride(static_cast<int64_t>(a.ldx), cute::Int<1>{}, int64_t(0));
    StrideD stride_out = cute::make_stride(cute::Int<1>{}, static_cast<int64_t>(a.ldo), int64_t(0));
    StrideScale stride_scale{};
    cute::get<0>(stride_scale) = cute::Int<1>{};
    cute::get<1>(stride_scale) = static_cast<int64_t>(n);
    cute::get<2>(stride_scale) = int64_t(0);

    typename CollectiveMainloop::Arguments mainloop{};
    mainloop.ptr_A = static_cast<ElementQ const*>(a.packed_weight);
    mainloop.dA = make_packed_weight_layout(n_padded, k);
    // The batch (L) mode has extent 1, but tile_to_shape gives it the stride n_padded * k (in int4 values, as
    // an int), which overflows past 2^31 weights and then breaks the TMA descriptor (cuTensorMapEncodeTiled
    // refuses the negative stride). The stride of an extent-1 mode is never used: make it 0, as x's is.
    cute::get<1>(cute::get<2>(mainloop.dA.stride())) = 0;
    mainloop.ptr_B = static_cast<ElementX const*>(a.x);
    mainloop.dB = stride_x;
    mainloop.ptr_S = static_cast<ElementScale const*>(a.scales);
    mainloop.dS = stride_scale;
    mainloop.group_size = static_cast<int>(a.group_size);
    if constexpr (Zeros) {
      mainloop.ptr_Z = static_cast<ElementScale const*>(a.zeros);
    }

    typename CollectiveEpilogue::Arguments epilogue{};
    epilogue.thread.alpha = a.alpha;
    epilogue.thread.beta = 0.0f;
    epilogue.thread.bias_ptr = static_cast<cutlass::half_t const*>(a.bias);
    epilogue.ptr_C = nullptr;
    epilogue.dC = stride_out;
    epilogue.ptr_D = static_cast<ElementOut*>(a.out);
    epilogue.dD = stride_out;

    cutlass::KernelHardwareInfo hw_info{};
    hw_info.device_id = 0;  // only used when sm_count is 0, which the runner never passes
    hw_info.sm_count = sm_count;
    (void)scale_k;
    typename Gemm::Arguments arguments{cutlass::gemm::GemmUniversalMode::kGemm, {n, m, k, 1}, mainloop, epilogue,
                                       hw_info};
    // The swapped problem's M is the weights' side (n), its N the tokens (m).
    const long long output_tiles = static_cast<long long>((n + TileN - 1) / TileN) * ((m + TileM - 1) / TileM);
    const TileOrder order = select_tile_order(output_tiles, sm_count);
    using RasterOptions = typename Kernel::TileScheduler::RasterOrderOptions;
    arguments.scheduler.max_swizzle_size = order.max_swizzle;
    arguments.scheduler.raster_order = order.raster == TileRaster::kAlongWeights  ? RasterOptions::AlongM
                                       : order.raster == TileRaster::kAlongTokens ? RasterOptions::AlongN
                                                                                   : RasterOptions::Heuristic;
    if constexpr (StreamK) {
      // Deterministic reduction: the same inputs give bit-identical outputs, whatever the SM timing.
      using Scheduler = typename Kernel::TileScheduler;
      arguments.scheduler.reduction_mode = Scheduler::ReductionMode::Deterministic;
      arguments.scheduler.decomposition_mode =
          select_streamk_decomposition(a, TileN, TileM, ClusterN, sm_count) ==
                  StreamKDecomposition::kStreamK
              ? Scheduler::DecompositionMode::StreamK
              : Scheduler::DecompositionMode::Heuristic;
    }
    return arguments;
  }

  static w4a16_status_t can_implement(const w4a16_gemm_args_t& a, int sm_count) {
    auto arguments = make_arguments(a, sm_count);
    cutlass::Status st = Gemm::can_implement(arguments);
    if (st != cutlass::Status::kSuccess) {
      set_error_message("CUTLASS can_implement refused m=%lld n=%lld k=%lld group_size=%lld: %s",
                        (long long)a.m, (long long)a.n, (long long)a.k, (long long)a.group_size,
                        cutlass::cutlassGetStatusString(st));
      return W4A16_CANNOT_IMPLEMENT;
    }
    return W4A16_OK;
  }

  // (after the decode kernel's counters: kWorkspaceCounterBytes)
  static size_t workspace_size(const w4a16_gemm_args_t& a, int sm_count) {
    const size_t bytes = Gemm::get_workspace_size(make_arguments(a, sm_count));
    return bytes ? kWorkspaceCounterBytes + bytes : 0;
  }

  static w4a16_status_t run(const w4a16_gemm_args_t& a, int sm_count, void* workspace_with_counters,
                            cudaStream_t stream) {
    void* workspace = workspace_with_counters && workspace_size(a, sm_count)
                          ? static_cast<char*>(workspace_with_counters) + kWorkspaceCounterBytes
                          : workspace_with_counters;
    auto arguments = make_arguments(a, sm_count);
    Gemm gemm;
    cutlass::Status st;
    // initialize() encodes the TMA descriptors (cudaGetDriverEntryPointByVersion + cuTensorMapEncodeTiled on
    // every call). From 8 host threads at once that failed intermittently ("Failed to initialize the TMA
    // descriptor", then a call through a null pointer: SIGSEGV; tests/test_concurrency.py). Host work of a few
    // microseconds: serialise it. Data-parallel kernels launch outside the lock (a launch may block on a full
    // queue). Stream-K kernels launch inside it: initialize() also queues a memset of the workspace's fix-up
    // flags, and two threads sharing a stream and its workspace (the numpy path: the legacy stream) must not
    // interleave as memset A, memset B, kernel B, kernel A, which hands kernel A kernel B's spent flags and left
    // it spinning forever (seen on the H100, 2026-11-25).
    std::unique_lock<std::mutex> lock(descriptor_mutex());
    st = gemm.initialize(arguments, workspace, stream);
    if constexpr (!StreamK) lock.unlock();
    // PDL (w4a16.h): built with CUTLASS_ENABLE_GDC_FOR_SM90 (kernels/generate.py), the load warps wait for the
    // previous grid before their first global read and the consumers release dependents after their last
    // tile's mainloop; without the launch attribute the wait is a no-op. A kernel built without it must never
    // get the attribute: it would read x before the previous kernel has written it.
    const bool pdl = kGdcCompiled && !(a.flags & W4A16_FLAG_NO_PDL);
    if (st == cutlass::Status::kSuccess) st = gemm.run(stream, nullptr, pdl);
    if (st != cutlass::Status::kSuccess) {
      cudaError_t err = cudaGetLastError();
      set_error_message("kernel launch failed: %s (%s)", cutlass::cutlassGetStatusString(st),
                        cudaGetErrorString(err));
      return err != cudaSuccess || st == cutlass::Status::kErrorInternal ? W4A16_CUDA_ERROR
                                                                           : W4A16_CANNOT_IMPLEMENT;
    }
    return W4A16_OK;
  }
};

template <class G>
constexpr KernelEntry make_kernel_entry(w4a16_config_info_t info) {
  return KernelEntry{info, &G::can_implement, &G::workspace_size, &G::run};
}

}  // namespace w4a16
