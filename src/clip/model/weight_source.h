// WeightSource: every tensor of a model folder, whether saved as one
// model.safetensors or as shards listed in model.safetensors.index.json.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "clip/model/safetensors.h"

namespace clip {

// All tensors of a model folder: model.safetensors, or the shards listed in
// model.safetensors.index.json ("weight_map": {name: shard file}).
class WeightSource {
 public:
  static WeightSource open_folder(const std::filesystem::path& dir);
  // nullptr if absent.
  const TensorView* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

}  // namespace clip
