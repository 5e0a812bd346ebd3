// A model's identity, so embeddings from different models are never mixed in one index.
#pragma once
#include <filesystem>
#include <string>

namespace clipfind::index {

// 16 hex digits: FNV-1a over config.json, and for each *.safetensors file its
// name, size, JSON header and four 64 KiB samples of the weights. Reading every
// byte of a 1.7 GB ViT-L at each search would cost seconds; retrained weights
// of the same shape differ in the samples with overwhelming probability.
// Throws std::runtime_error naming the folder when it holds no model.
std::string model_fingerprint(const std::filesystem::path& model_dir);

// The model family ("clip", "siglip": clip::family_name) that the folder's
// config.json declares, without loading the weights; "" when the config
// cannot be read or parsed (loading the model then says why).
std::string model_family(const std::filesystem::path& model_dir);

}  // namespace clipfind::index
