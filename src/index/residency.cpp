#include "index/residency.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace clipfind::index {

double resident_share(const void* data, size_t bytes, size_t samples) {
  if (!data || bytes == 0 || samples == 0) return 1.0;
  // Whole pages only: the partial first and last ones are shared with what
  // lies around the range (a file's header and trailer, read on opening).
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data), end = begin + bytes;
  const uintptr_t first = (begin + page - 1) / page * page;
  if (end < first + page) return 1.0;
  const size_t pages = (end - first) / page;
  const size_t n = std::min(samples, pages);
  size_t resident = 0;
  for (size_t i = 0; i < n; ++i) {
    const uintptr_t at = first + (pages * i / n) * page;
    unsigned char in = 0;
    if (mincore(reinterpret_cast<void*>(at), page, &in) != 0) return 1.0;
    resident += in & 1;
  }
  return double(resident) / double(n);
}

}  // namespace clipfind::index
