// The CUTLASS kernel template behind sm90_gemm.h. Included only by the
// sm90_gemm_*.cu instantiation files (one per epilogue, so they compile in
// parallel), which are built for sm_90a alone.
#pragma once
#include <cutlass/cutlass.h>
#include <cutlass/gemm/device/gemm_universal_adapter.h>

#include <cute/tensor.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>

#include "clip/cuda/sm90/sm90_epilogues.cuh"
#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

template <Epilogue E, class TileShape, class ClusterShape, class KernelSchedule, class EpilogueSchedule>
struct Sm90Gemm {
  using Traits = EpilogueTraits<E>;
  using ElementAB = cutlass::half_t;
  using ElementC = typename Traits::ElementC;
  using ElementD = typename Traits::ElementD;
  using LayoutA = cutlass::layout::RowMajor;     // x [M, K]
  using LayoutB = cutlass::layout::ColumnMajor;  // w [N, K] row-major = B [K, N] column-major
  using LayoutCD = cutlass::layout::RowMajor;    // out [M, N]
  static constexpr int kAlignAB = 8;             // 16 bytes
  static constexpr int kAlignD = 16 / sizeof(ElementD);
  // A void source still needs an alignment argument; take D's.
  static constexpr int kAlignC = kAlignD;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, ElementC, LayoutCD, kAlignC, ElementD, LayoutCD,
      kAlignD, EpilogueSchedule, typename Traits::template Fusion<TileShape, EpilogueSchedule>>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, LayoutA, kAlignAB, ElementAB, LayoutB, kAlignAB,
      float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      KernelSchedule>::CollectiveOp;

  using Kernel =
      cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, CollectiveMainloop, CollectiveEpilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static Status run(const Problem& p, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideC = typename Kernel::StrideC;
    using StrideD = typename Kernel::StrideD;
    const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);
    const StrideA sa = cute::make_stride(int64_t(K), cute::Int<1>{}, int64_t(M) * K);
    const StrideB sb = cute::make_stride(int64_t(K), cute::Int<1>{}, int64_t(N) * K);
    const StrideC sc = cute::make_stride(int64_t(N), cute::Int<1>{}, int64_t(M) * N);
    const StrideD sd = cute::make_stride(int64_t(N), cute::Int<1>{}, int64_t(M) * N);
    auto* d = static_cast<ElementD*>(p.out);
    const ElementD* c = std::is_void_v<ElementC> ? nullptr : d;  // in place for the residual

    typename Gemm::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {M, N, K, 1},
        {static_cast<const ElementAB*>(p.x), sa, static_cast<const ElementAB*>(p.w), sb},
        {{}, reinterpret_cast<const std::conditional_t<std::is_void_v<ElementC>, ElementD, ElementC>*>(c), sc, d, sd}};
    if (!Traits::template set<TileShape>(args.epilogue.thread, p)) return Status::Unsupported;
    args.hw_info.sm_count = p.sm_count;

    Gemm gemm;
    if (gemm.can_implement(args) != cutlass::Status::kSuccess) return Status::Unsupported;
    if (Gemm::get_workspace_size(args) > workspace_bytes) return Status::Unsupported;
    if (gemm.initialize(args, workspace, stream) != cutlass::Status::kSuccess) return Status::Failed;
    return gemm.run(stream) == cutlass::Status::kSuccess ? Status::Ok : Status::Failed;
  }
};

// The tile shapes and schedules compiled for every epilogue; the runner
// times them against cuBLASLt on each shape's first call. On the H100 the
// 128x128 ping-pong tiles win most large CLIP products: alone, or in a 2x1
// cluster (two CTAs of one column share the weight tile through TMA
// multicast: qkv, L/14's fc1) or a 1x2 cluster (two of one row share the
// activation tile: the out-projection, fc2); see bench/notes/cuda-rounds.md,
// '128x128 tiles in 2x1 and 1x2 clusters', which also lists the shapes tried
// and dropped (128x256 1x1 and stream-K, 256x128, 128x128x128, a larger
// tile-scheduler swizzle). The 128x256 cooperative kernel (2x1 cluster) went
// too: it won no product by more than a tie, and where it did (ViT-L/14's
// folded qkv: 592 against 594 us alone) its layers took 766 us in a pass
// against 682 for the 2x1 ping-pong kernel (same page, 'the cooperative GEMM
// kernel out of the race'; likely because ping-pong overlaps one tile's
// epilogue with the next tile's products, which a race of one product at a
// time hardly shows).
// The last two are for few rows: one 64-row tile covers a batch-1 image, and
// narrow tiles spread the weight reads (what bounds such a product) over
// 48-144 SMs. They use the plain (non-persistent) warp-specialised kernel:
// with one tile per CTA there is nothing for ping-pong to overlap.
using namespace cute;
using Ping = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using PingEpi = cutlass::epilogue::TmaWarpSpecialized;
using Plain = cutlass::gemm::KernelTmaWarpSpecialized;

// The large-product kernels: every epilogue, and all that the LayerNorm
// folding epilogues have (they run only where the large path does).
template <Epilogue E>
std::vector<Variant> large_variants_for() {
  return {
      {"cutlass 128x128x64 pingpong 1x1", E, false, 128, 128,
       &Sm90Gemm<E, Shape<_128, _128, _64>, Shape<_1, _1, _1>, Ping, PingEpi>::run},
      {"cutlass 128x128x64 pingpong 2x1", E, false, 128, 128,
       &Sm90Gemm<E, Shape<_128, _128, _64>, Shape<_2, _1, _1>, Ping, PingEpi>::run},
      {"cutlass 128x128x64 pingpong 1x2", E, false, 128, 128,
       &Sm90Gemm<E, Shape<_128, _128, _64>, Shape<_1, _2, _1>, Ping, PingEpi>::run},
  };
}

template <Epilogue E>
std::vector<Variant> variants_for() {
  std::vector<Variant> v = large_variants_for<E>();
  v.push_back({"cutlass 64x32x64 ws 1x1", E, true, 64, 32,
               &Sm90Gemm<E, Shape<_64, _32, _64>, Shape<_1, _1, _1>, Plain, PingEpi>::run});
  v.push_back({"cutlass 64x16x64 ws 1x1", E, true, 64, 16,
               &Sm90Gemm<E, Shape<_64, _16, _64>, Shape<_1, _1, _1>, Plain, PingEpi>::run});
  return v;
}

}  // namespace clip::cuda::sm90
