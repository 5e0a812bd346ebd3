// WeightSource: every tensor of a model folder, whether saved as one
// model.safetensors or as shards listed in model.safetensors.index.json.
#include "clip/model/weight_source.h"

#include <nlohmann/json.hpp>
#include <set>

#include "clip/error.h"
#include "clip/model/json_fields.h"

namespace clip {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// Shard names come from a file we did not write: keep them inside the folder.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
}

}  // namespace

WeightSource WeightSource::open_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": model folder does not exist or is not a directory");

  WeightSource src;
  const fs::path single = dir / kSingleFile;
  const fs::path index = dir / kIndexFile;

  // Like transformers, prefer the single file when both are present.
  if (fs::exists(single, ec)) {
    src.files_.push_back(SafetensorsFile::open(single));
    for (const auto& t : src.files_.front()->tensors()) src.by_name_.emplace(t.name, &t);
    return src;
  }
  if (!fs::exists(index, ec)) {
    std::string hint;
    if (fs::exists(dir / "pytorch_model.bin", ec))
      hint = " (only pytorch_model.bin found: re-save the model with safetensors)";
    throw Error(dir.string() + ": no " + kSingleFile + " or " + kIndexFile + hint);
  }

  const json idx = detail::read_json_file(index);
  const auto wm = idx.is_object() ? idx.find("weight_map") : idx.end();
  if (!idx.is_object() || wm == idx.end() || !wm->is_object())
    throw Error(index.string() + ": no \"weight_map\" object");

  std::vector<std::string> shards;  // in first-mention order
  std::set<std::string> seen;
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string() || !plain_file_name(shard.get<std::string>()))
      throw Error(index.string() + ": tensor '" + tensor + "' maps to something that is not a file name in the folder");
    if (seen.insert(shard.get<std::string>()).second) shards.push_back(shard.get<std::string>());
  }
  std::string missing;
  for (const auto& s : shards)
    if (!fs::is_regular_file(dir / s, ec)) missing += (missing.empty() ? "" : ", ") + s;
  if (!missing.empty()) throw Error(index.string() + ": shard file(s) missing from " + dir.string() + ": " + missing);
  for (const auto& s : shards) src.files_.push_back(SafetensorsFile::open(dir / s));

  // Index each shard's tensors, then make sure the weight map tells the truth.
  for (const auto& f : src.files_) {
    for (const auto& t : f->tensors()) {
      auto [it, inserted] = src.by_name_.emplace(t.name, &t);
      if (!inserted)
        throw Error(index.string() + ": tensor '" + t.name + "' is stored in both " + it->second->file + " and " +
                    t.file);
    }
  }
  for (const auto& [tensor, shard] : wm->items()) {
    const auto it = src.by_name_.find(tensor);
    if (it == src.by_name_.end() || fs::path(it->second->file).filename() != shard.get<std::string>())
      throw Error(index.string() + ": tensor '" + tensor + "' is mapped to " + shard.get<std::string>() +
                  " but that file does not hold it");
  }
  return src;
}

const TensorView* WeightSource::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> WeightSource::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) out.push_back(name);
  return out;
}

}  // namespace clip
