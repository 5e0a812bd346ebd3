#include <algorithm>
#include <cctype>
#include <sstream>

#include "clip/clip.h"

namespace clip {

std::vector<std::string> device_list(const std::string& device, const std::function<int()>& cuda_count) {
  const bool all = device == "cuda:all";
  const bool list = device.rfind("cuda:", 0) == 0 && device.find(',') != std::string::npos;
  if (!all && !list) return {device};
  const int count = cuda_count();
  auto bad = [&](const std::string& why) {
    return Error("--device " + device + ": " + why + " (" + std::to_string(count) + " CUDA GPU" +
                 (count == 1 ? "" : "s") + " here)");
  };
  std::vector<std::string> out;
  if (all) {
    if (count == 0) throw bad("no GPU to run on");
    for (int i = 0; i < count; ++i) out.push_back("cuda:" + std::to_string(i));
    return out;
  }
  // The list's form first (whatever GPUs there are), then each GPU.
  if (device.back() == ',') throw bad("a trailing comma");
  std::vector<std::string> items;
  std::stringstream given(device.substr(5));
  for (std::string item; std::getline(given, item, ',');) {
    if (item.empty() || item.size() > 3 || !std::all_of(item.begin(), item.end(), ::isdigit))
      throw bad("'" + item + "' is not a GPU number; expected cuda:all or cuda:N,M,...");
    items.push_back(item);
  }
  std::vector<int> seen;
  for (const std::string& item : items) {
    const int n = std::stoi(item);
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) throw bad("GPU " + item + " is named twice");
    seen.push_back(n);
  }
  for (const std::string& item : items) {
    if (std::stoi(item) >= count) throw bad("there is no GPU " + item);
    out.push_back("cuda:" + item);
  }
  return out;
}

}  // namespace clip
