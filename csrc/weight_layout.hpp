// The packed weight layout: the one contract between prepack (host), the CUTLASS mainloop and the decode kernel.
//
// The weights are the A operand of a register-sourced WGMMA (m64nNk16, fp16). Each warp of the consumer
// warpgroup owns 16 rows (output features n) x 16 k of every k-block, and thread t holds 8 values of it:
// rows t/4 and t/4+8, columns 2*(t%4)+{0,1} and +8 (the mma.m16n8k16 A fragment). Stored naively (K-major
// int4), those 8 nibbles sit in four different bytes, so the smem->register copy would be four 8-bit loads.
// We store every 16x16 block as 32 threads x 8 nibbles instead, thread-major, so a thread's fragment is one
// 32-bit word, and inside the word the nibbles go in the order [0,2,4,6,1,3,5,7], which lets CUTLASS's
// int4->fp16 converter extract two values per lop3 (LayoutAwareConvertImpl<int4b_t, half_t, ...>).
// Blocks are tiled N-fastest (cute::tile_to_shape's default), i.e. block (nb, kb) starts at byte
// (nb + kb * N_pad/16) * 128. N is padded to a multiple of 16 with zero weights.
//
// Breaking this layout silently breaks every kernel: tests/test_packing.py checks the explicit formula
// (python/w4a16_gemm/_packing.py) against this cute layout through the extension.
#pragma once

#include "cute/tensor.hpp"
#include "cute/atom/mma_traits_sm90_gmma.hpp"

namespace w4a16 {

// The nibble order inside one thread's 32-bit word: memory slot j holds fragment value kValueOrder[j].
using ValueShuffle = cute::Layout<cute::Shape<cute::_2, cute::_4>, cute::Stride<cute::_4, cute::_1>>;

// (n, k) -> nibble offset within one 16x16 block.
CUTE_HOST_DEVICE constexpr auto weight_block_layout() {
  using namespace cute;
  // Any fp16 RS GMMA atom has the same A thread-value layout; the N extent is irrelevant here.
  using Atom = decltype(SM90::GMMA::rs_op_selector<half_t, half_t, float, Shape<_64, _16, _16>>());
  using Traits = MMA_Traits<Atom>;
  auto tv_warpgroup = typename Traits::ALayout{};  // (128 threads, 8 values) -> (m, k) in 64x16
  // One warp's slice: threads 0..31 cover rows 0..15 (warps split the 64 rows).
  auto tv_warp = make_layout_like(composition(tv_warpgroup, make_shape(Int<32>{}, size<1>(tv_warpgroup))));
  auto mk_to_tv = right_inverse(tv_warp).with_shape(make_shape(Int<16>{}, Int<16>{}));  // (m,k) -> t + 32*v
  // (t, v) -> nibble offset: thread-major (8 nibbles a thread), value v in slot ValueShuffle(v).
  auto tv_to_offset = make_layout(make_shape(Int<32>{}, shape(ValueShuffle{})),
                                  make_stride(Int<8>{}, stride(ValueShuffle{})));
  return composition(tv_to_offset, mk_to_tv);
}

using WeightBlockLayout = decltype(weight_block_layout());

// Full (N_pad, K, 1) layout, as the mainloop's "stride" for A.
using PackedWeightLayout =
    decltype(cute::tile_to_shape(WeightBlockLayout{}, cute::Layout<cute::Shape<int, int, int>,
                                                                    cute::Stride<int, cute::_1, int>>{}));

inline PackedWeightLayout make_packed_weight_layout(int n_padded, int k) {
  return cute::tile_to_shape(WeightBlockLayout{}, cute::make_shape(n_padded, k, 1));
}

}  // namespace w4a16
