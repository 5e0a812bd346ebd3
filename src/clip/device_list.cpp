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
  std::vector<int> seen;
  std::stringstream items(device.substr(5));
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty() || item.size() > 3 || !std::all_of(item.begin(), item.end(), ::isdigit))
      throw bad("'" + item + "' is not a GPU number; expected cuda:all or cuda:N,M,...");
    const int n = std::stoi(item);
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) throw bad("GPU " + item + " is named twice");
    if (n >= count) throw bad("there is no GPU " + item);
    seen.push_back(n);
    out.push_back("cuda:" + item);
  }
  if (device.back() == ',') throw bad("a trailing comma");
  return out;
}

}  // namespace clip
