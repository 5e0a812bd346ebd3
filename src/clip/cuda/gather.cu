#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/gather.cuh"

namespace clip::cuda {
namespace {

// One block per (gathered row, table); W is the copy unit (16 bytes where
// the row sizes and all buffers allow, else 1).
template <typename W>
__global__ void gather_rows_kernel(GatherTable a, GatherTable b, const int32_t* __restrict__ rows) {
  const GatherTable& t = blockIdx.y == 0 ? a : b;
  const size_t units = t.row_bytes / sizeof(W);
  const W* from = static_cast<const W*>(t.src) + size_t(rows[blockIdx.x]) * units;
  W* to = static_cast<W*>(t.dst) + size_t(blockIdx.x) * units;
  for (size_t i = threadIdx.x; i < units; i += blockDim.x) to[i] = from[i];
}

}  // namespace

void gather_rows(const Exec& exec, const int32_t* rows, int n, const GatherTable& a, const GatherTable* b) {
  require(n >= 0, "gather_rows", "negative row count");
  if (n == 0) return;
  bool wide = true;
  for (const GatherTable* t : {&a, b}) {
    if (!t) continue;
    require(t->src && rows && t->dst && t->src != t->dst, "gather_rows", "null or aliased buffers");
    wide = wide && t->row_bytes % 16 == 0 && aligned16(t->src) && aligned16(t->dst);
  }
  const dim3 grid(n, b ? 2 : 1);
  const GatherTable second = b ? *b : a;
  if (wide)
    gather_rows_kernel<int4><<<grid, 128, 0, exec.stream>>>(a, second, rows);
  else
    gather_rows_kernel<unsigned char><<<grid, 128, 0, exec.stream>>>(a, second, rows);
  CLIP_CHECK_LAUNCH(exec, "gather_rows");
}

}  // namespace clip::cuda
