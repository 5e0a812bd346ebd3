// Typed, defaulted field access for the JSON files of a model folder
// (config.json, preprocessor_config.json), with errors naming file and field.
// Internal to src/clip.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace clip::detail {

// Reads a whole JSON file; throws clip::Error naming it if it is missing or
// not valid JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Fields of one JSON object. `prefix` ("text_config.") makes error messages
// point at the exact field. An absent or null field yields the default, as
// transformers does; a present field of the wrong type is an error.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& obj, std::string file, std::string prefix = "")
      : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const;
  const nlohmann::json* get(const char* key) const;  // nullptr if absent or null
  int get_int(const char* key, int def, int min_value) const;
  float get_float(const char* key, float def) const;
  bool get_bool(const char* key, bool def) const;
  std::string get_string(const char* key, const std::string& def) const;

  // "<file>: <prefix><key> <what>"
  [[noreturn]] void fail(const char* key, const std::string& what) const;

 private:
  const nlohmann::json& obj_;
  std::string file_;
  std::string prefix_;
};

}  // namespace clip::detail
