#include "clip/model/json_fields.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "clip/error.h"

namespace clip::detail {

using json = nlohmann::json;

json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

bool JsonFields::has(const char* key) const { return get(key) != nullptr; }

const json* JsonFields::get(const char* key) const {
  const auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonFields::fail(const char* key, const std::string& what) const {
  throw Error(file_ + ": " + prefix_ + key + " " + what);
}

int JsonFields::get_int(const char* key, int def, int min_value) const {
  const json* v = get(key);
  if (!v) return def;
  // 12.0 is accepted: some tools write every number as a float.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d != static_cast<double>(static_cast<long long>(d))) fail(key, "must be an integer");
  } else if (!v->is_number_integer()) {
    fail(key, "must be an integer");
  }
  const double d = v->get<double>();
  if (d < min_value || d > std::numeric_limits<int>::max())
    fail(key, "is " + v->dump() + ", out of range (at least " + std::to_string(min_value) + ")");
  return static_cast<int>(d);
}

float JsonFields::get_float(const char* key, float def) const {
  const json* v = get(key);
  if (!v) return def;
  if (!v->is_number()) fail(key, "must be a number");
  return v->get<float>();
}

bool JsonFields::get_bool(const char* key, bool def) const {
  const json* v = get(key);
  if (!v) return def;
  if (!v->is_boolean()) fail(key, "must be true or false");
  return v->get<bool>();
}

std::string JsonFields::get_string(const char* key, const std::string& def) const {
  const json* v = get(key);
  if (!v) return def;
  if (!v->is_string()) fail(key, "must be a string");
  return v->get<std::string>();
}

}  // namespace clip::detail
