// The epilogues of the sm90 GEMMs (sm90_gemm.h's Epilogue), as CUTLASS
// fusion operations or epilogue visitor trees, with what each needs from a
// Problem. Included by sm90_gemm_kernel.cuh only (sm_90a files).
#pragma once
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/thread/activation.h>
#include <cutlass/functional.h>

#include <cute/tensor.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/callbacks.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp>
#include <type_traits>

#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

// CLIP's QuickGELU, x * sigmoid(1.702 x). The epilogue calls it on
// fragments (Array) of float32 values, and on the H100 its cost decides
// fc1's speed: the multi-function unit does 16 operations a clock per SM,
// against 128 FMAs. So it takes one such operation, as x/2 (1 + tanh(0.851
// x)) with tanh.approx (absolute error about 2^-11, so the output moves by
// at most about |x| 2^-12, the size of fp16's rounding of x; tested by
// CudaOps.Sm90QuickGeluAccuracy), not two as x / (1 + exp(-1.702 x)) with
// ex2 and a reciprocal: fc1 446 -> 375 us at B/32 batch 1024
// (bench/notes/cuda-rounds.md, 'QuickGELU in one multi-function
// operation'; an IEEE division had made it 30% slower still, and a Newton
// reciprocal on the FMA pipe was no faster than the two operations).
template <class T>
struct QuickGelu {
  static const bool kIsHeavy = true;
  CUTLASS_DEVICE T operator()(T const& x) const {
    float t;
    asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(0.851f * x));
    const float h = 0.5f * x;
    return fmaf(h, t, h);
  }
};
template <class T, int N>
struct QuickGelu<cutlass::Array<T, N>> {
  static const bool kIsHeavy = true;
  CUTLASS_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& v) const {
    cutlass::Array<T, N> y;
    QuickGelu<T> f;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = f(v[i]);
    return y;
  }
};

// Per epilogue: output/source element types, the fusion (a CUTLASS fusion
// operation or visitor tree, for a CTA tile shape and epilogue schedule) and
// set(), which fills its arguments from a Problem (false: the problem lacks
// a buffer it needs, or has a shape the fusion does not take).
template <Epilogue E>
struct EpilogueTraits;

// CUTLASS's linear-combination fusions: out = act(acc + bias) in fp16, or
// with `residual` the float32 stream updated in place, out = acc + bias + out.
template <class FusionOp, bool residual = false>
struct LinCombTraits {
  using ElementC = std::conditional_t<residual, float, void>;  // C = D = the float32 stream; else no source read
  using ElementD = std::conditional_t<residual, float, cutlass::half_t>;
  template <class Tile, class Schedule>
  using Fusion = FusionOp;
  template <class Tile, class Args>
  static bool set(Args& a, const Problem& p) {
    a.alpha = 1.f;
    a.beta = residual ? 1.f : 0.f;
    a.bias_ptr = p.bias;
    return true;
  }
};
template <>
struct EpilogueTraits<Epilogue::Bias>
    : LinCombTraits<cutlass::epilogue::fusion::LinCombPerColBias<cutlass::half_t, float, float>> {};
template <>
struct EpilogueTraits<Epilogue::BiasQuickGelu>
    : LinCombTraits<cutlass::epilogue::fusion::LinCombPerColBiasEltAct<QuickGelu, cutlass::half_t, float, float>> {};
template <>
struct EpilogueTraits<Epilogue::BiasGelu>
    : LinCombTraits<cutlass::epilogue::fusion::LinCombPerColBiasEltAct<cutlass::epilogue::thread::GELU, cutlass::half_t,
                                                                       float, float>> {};
// SigLIP's gelu_pytorch_tanh: CUTLASS's GELU_taylor is that formula, its
// tanh the one-operation tanh.approx (as QuickGelu above).
template <>
struct EpilogueTraits<Epilogue::BiasGeluTanh>
    : LinCombTraits<cutlass::epilogue::fusion::LinCombPerColBiasEltAct<cutlass::epilogue::thread::GELU_taylor,
                                                                       cutlass::half_t, float, float>> {};
template <>
struct EpilogueTraits<Epilogue::BiasResidual>
    : LinCombTraits<cutlass::epilogue::fusion::LinCombPerColBias<float, float, float, float>, true> {};

namespace evt {
using namespace cute;
using namespace cutlass::epilogue::fusion;
constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;

// Element-wise functions of visitor-tree nodes, on fragments of float32.
template <class T>
struct Sum3 {};  // acc + bias + source
template <int N>
struct Sum3<cutlass::Array<float, N>> {
  using A = cutlass::Array<float, N>;
  CUTLASS_DEVICE A operator()(A const& acc, A const& c, A const& bias) const {
    A y;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = c[i] + (acc[i] + bias[i]);
    return y;
  }
};
// The register step of a row's sum of squares.
template <class T>
struct PlusSquare {
  CUTLASS_DEVICE T operator()(T const& sum, T const& x) const { return sum + x * x; }
};
struct NoAct {
  CUTLASS_DEVICE float operator()(float x) const { return x; }
};
// act(scale * acc + bias): LN(x) w^T + b for x's own product with weights
// that carry gamma and sum to zero along k (fold_norm.h), whose bias holds
// b + w beta: x w'^T = (x - mean) w'^T then, and scale = 1/sqrt(var + eps).
template <class T, class Act>
struct LnFold {};
template <int N, class Act>
struct LnFold<cutlass::Array<float, N>, Act> {
  using A = cutlass::Array<float, N>;
  CUTLASS_DEVICE A operator()(A const& acc, A const& scale, A const& bias) const {
    A y;
    Act act;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = act(fmaf(scale[i], acc[i], bias[i]));
    return y;
  }
};
template <class T>
using LnFoldNone = LnFold<T, NoAct>;
template <class T>
using LnFoldQuickGelu = LnFold<T, QuickGelu<float>>;
template <class T>
using LnFoldGelu = LnFold<T, cutlass::epilogue::thread::GELU<float>>;
template <class T>
using LnFoldGeluTanh = LnFold<T, cutlass::epilogue::thread::GELU_taylor<float>>;

template <class Tile>
using RowVector = Sm90RowBroadcast<0, Tile, float, float, Stride<_0, _1, int64_t>, 4>;  // [N]
template <class Tile>
using ColVector = Sm90ColBroadcast<0, Tile, float, float, Stride<_1, _0, int64_t>, 4>;  // [M]
// A row reduction left per tile column in a [ceil(N/tile_n)][round_up(M,
// tile_m)] buffer (FinalReduction = false): fixed order, so the same input
// always gives the same statistics, unlike atomics. No bounds check per
// element (VisitCheckOOB = false): rows past M land in the buffer's
// padding, and set() refuses an N that leaves a part tile column.
template <class Tile, template <class> class RegReduce>
using RowPartials = Sm90ColReduction<RegReduce, cutlass::plus, cutlass::plus, 0, Tile, float, float, kRound,
                                     Stride<_1, _0, _0>, 4, true, false, false>;

// The fp16 copy goes out like D, through shared memory and TMA stores.
template <class Tile, class Schedule>
using CopyStore = cutlass::epilogue::collective::detail::AuxStoreDescriptor<
    cutlass::epilogue::collective::detail::EpilogueDescriptor<Tile, cutlass::epilogue::collective::EpilogueTileAuto,
                                                              float, float, Schedule>,
    cutlass::layout::RowMajor, cutlass::half_t>;

// D (float32) = acc + bias + C, also stored as fp16, with its row sums and
// sums of squares. Each node passes D through.
template <class Tile, class Schedule, class Store = CopyStore<Tile, Schedule>>
using ResidualLnStats = Sm90EVT<
    RowPartials<Tile, PlusSquare>,
    Sm90EVT<
        RowPartials<Tile, cutlass::plus>,
        Sm90EVT<Sm90AuxStore<Store::Stages, typename Store::EpilogueTile, cutlass::half_t, kRound,
                             typename Store::Stride, typename Store::SmemLayoutAtom, typename Store::CopyOpR2S, 8>,
                Sm90EVT<Sm90Compute<Sum3, float, float, kRound>, Sm90AccFetch, Sm90SrcFetch<float>, RowVector<Tile>>>>>;

template <class Tile, template <class> class Fn>
using LnFoldEvt =
    Sm90EVT<Sm90Compute<Fn, cutlass::half_t, float, kRound>, Sm90AccFetch, ColVector<Tile>, RowVector<Tile>>;
}  // namespace evt

template <>
struct EpilogueTraits<Epilogue::BiasResidualLnStats> {
  using ElementC = float;
  using ElementD = float;
  template <class Tile, class Schedule>
  using Fusion = evt::ResidualLnStats<Tile, Schedule>;
  template <class Tile, class Args>
  static bool set(Args& a, const Problem& p) {
    constexpr int tm = cute::size<0>(Tile{}), tn = cute::size<1>(Tile{});
    if (!p.copy || !p.row_partials || p.N % tn) return false;
    const int64_t plane = (p.N + tn - 1) / tn * ((p.M + tm - 1) / tm * tm);  // the sums, then the squares
    // The arguments nest like the tree: {children..., node}.
    a = {
        {{{{}, {}, {p.bias}, {}},
          {static_cast<cutlass::half_t*>(p.copy), cute::make_stride(int64_t(p.N), cute::Int<1>{}, int64_t(p.M) * p.N)}},
         {p.row_partials}},
        {p.row_partials + plane}};
    return true;
  }
};

template <template <class> class Fn>
struct LnFoldTraits {
  using ElementC = void;
  using ElementD = cutlass::half_t;
  template <class Tile, class Schedule>
  using Fusion = evt::LnFoldEvt<Tile, Fn>;
  template <class Tile, class Args>
  static bool set(Args& a, const Problem& p) {
    if (!p.row_scale || !p.bias) return false;
    a = {{}, {p.row_scale}, {p.bias}, {}};
    return true;
  }
};
template <>
struct EpilogueTraits<Epilogue::LnFoldBias> : LnFoldTraits<evt::LnFoldNone> {};
template <>
struct EpilogueTraits<Epilogue::LnFoldQuickGelu> : LnFoldTraits<evt::LnFoldQuickGelu> {};
template <>
struct EpilogueTraits<Epilogue::LnFoldGelu> : LnFoldTraits<evt::LnFoldGelu> {};
template <>
struct EpilogueTraits<Epilogue::LnFoldGeluTanh> : LnFoldTraits<evt::LnFoldGeluTanh> {};

}  // namespace clip::cuda::sm90
