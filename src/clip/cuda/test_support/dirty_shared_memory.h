// Fills every SM's shared memory with fp16 NaNs, so that a kernel that reads
// shared memory it has not written (or not yet waited for) shows NaN rather
// than whatever the last kernel left there, which is often finite.
#pragma once

namespace clip::cuda::test {

void dirty_shared_memory();

}  // namespace clip::cuda::test
