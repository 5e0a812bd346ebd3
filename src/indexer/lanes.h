// The lanes of `clipfind index`: one per device the engine runs on (one per
// GPU with --device cuda:all or cuda:0,2,3), each with its own engine, NVDEC
// decoders, frame queue and encoder thread. The decoder threads' work queue
// (unit_queue.h), the joiner and the writer are shared (pipeline.cpp).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace clipfind {

// The devices that `device` names, one lane each: "cuda:all" every GPU
// (cuda_count() of them), "cuda:0,2,3" those, anything else itself alone
// (the engine checks it as it loads). Throws std::runtime_error naming
// --device for a bad or repeated ordinal, one past the GPUs there are, or
// "cuda:all" with no GPU.
std::vector<std::string> lane_devices(const std::string& device, const std::function<int()>& cuda_count);

}  // namespace clipfind
