// How much of a mapped file is in memory (the page cache), from mincore(2)
// on evenly spaced pages: whether a scan of vectors.f16 would read the disk.
#pragma once
#include <cstddef>

namespace clipfind::index {

// Share in [0, 1] of up to `samples` evenly spaced whole pages of [data,
// data + bytes) that are resident; 1 where it cannot tell (no whole page,
// not a mapping). Linux reports the page cache only for files the
// caller owns or may write; for others, the pages this process mapped.
double resident_share(const void* data, size_t bytes, size_t samples = 1024);

}  // namespace clipfind::index
