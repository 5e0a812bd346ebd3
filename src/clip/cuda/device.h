// Probing the GPU: whether the CUDA backend can run here (cuda_available,
// declared in cuda_backend.h with the other public probes) and whether an
// option names a device that exists.
#pragma once

namespace clip::cuda {

// Throws clip::Error saying why unless a usable GPU is present and
// `device` is one of them.
void require_device(int device);

// How many CUDA devices there are (0 when CUDA is unusable).
int device_count();

}  // namespace clip::cuda
