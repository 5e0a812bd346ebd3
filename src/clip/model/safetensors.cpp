// Parsing and validating one safetensors image, and SafetensorsFile.
//
// The header is untrusted input (the fuzzer feeds it arbitrary bytes), so
// every number is range-checked with overflow-safe arithmetic before a single
// data byte is addressed. Errors name the file and, where there is one, the
// tensor.
#include "clip/model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "clip/error.h"
#include "clip/model/mmap_file.h"

namespace clip {

namespace {

using json = nlohmann::json;

// The reference implementation (safetensors crate) refuses headers above
// 100 MB; a real CLIP header is a few tens of KB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  const char* name;
  DType dtype;
  size_t size;
};

// The dtypes a CLIP checkpoint may carry. Others in the safetensors spec
// (F8_*, U16..U64, C64, ...) are rejected as unsupported.
constexpr DTypeInfo kDTypes[] = {
    {"F64", DType::F64, 8}, {"F32", DType::F32, 4},   {"F16", DType::F16, 2}, {"BF16", DType::BF16, 2},
    {"I64", DType::I64, 8}, {"I32", DType::I32, 4},   {"I16", DType::I16, 2}, {"I8", DType::I8, 1},
    {"U8", DType::U8, 1},   {"BOOL", DType::BOOL, 1},
};

const DTypeInfo* find_dtype(std::string_view name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw Error(file + ": " + what); }

[[noreturn]] void fail_tensor(const std::string& file, const std::string& name, const std::string& what) {
  throw Error(file + ": tensor '" + name + "': " + what);
}

// A JSON integer >= 0 that fits in int64 (shape dims and offsets).
bool as_count(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    out = static_cast<uint64_t>(s);
  } else {
    return false;
  }
  return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

// Parses the header JSON, noting duplicate top-level keys, which
// nlohmann::json would otherwise silently collapse to the last one.
json parse_header(const uint8_t* begin, const uint8_t* end, const std::string& file) {
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    fail(file, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(file, "header is not a JSON object");
  if (!duplicate.empty()) fail_tensor(file, duplicate, "listed twice in the header");
  return header;
}

}  // namespace

const char* dtype_name(DType d) {
  for (const auto& info : kDTypes)
    if (info.dtype == d) return info.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& info : kDTypes)
    if (info.dtype == d) return info.size;
  return 0;
}

std::vector<TensorView> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& file) {
  if (size < 8) fail(file, "too short to be a safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxHeaderBytes)
    fail(file, "header length " + std::to_string(header_len) + " is absurd (over 100 MB); not a safetensors file?");
  if (header_len > size - 8)
    fail(file, "header length " + std::to_string(header_len) + " is larger than the file (" + std::to_string(size) +
                   " bytes); truncated or not a safetensors file");

  const json header = parse_header(bytes + 8, bytes + 8 + header_len, file);
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  std::vector<TensorView> views;
  views.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;  // free-form strings; nothing we need
    if (!entry.is_object()) fail_tensor(file, name, "entry is not a JSON object");

    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail_tensor(file, name, "missing \"dtype\"");
    const DTypeInfo* info = find_dtype(dt->get_ref<const std::string&>());
    if (!info) fail_tensor(file, name, "unknown or unsupported dtype '" + dt->get_ref<const std::string&>() + "'");

    const auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail_tensor(file, name, "\"shape\" is missing or not a list");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    bool numel_overflow = false;
    for (const auto& d : *sh) {
      uint64_t n = 0;
      if (!as_count(d, n)) fail_tensor(file, name, "\"shape\" must be a list of non-negative integers");
      shape.push_back(static_cast<int64_t>(n));
      numel_overflow |= __builtin_mul_overflow(numel, n, &numel);
    }

    const auto off = entry.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (off == entry.end() || !off->is_array() || off->size() != 2 || !as_count((*off)[0], begin) ||
        !as_count((*off)[1], end))
      fail_tensor(file, name, "\"data_offsets\" must be [begin, end] with non-negative integers");
    if (begin > end)
      fail_tensor(file, name,
                  "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] end before they begin");
    if (end > data_size)
      fail_tensor(file, name,
                  "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] run past the data (" +
                      std::to_string(data_size) + " bytes); file truncated?");
    uint64_t expected = 0;
    if (numel_overflow || __builtin_mul_overflow(numel, info->size, &expected) || expected != end - begin)
      fail_tensor(file, name,
                  "shape " + shape_str(shape) + " of " + info->name + " needs " +
                      (numel_overflow ? std::string("more than 2^64")
                                      : std::to_string(numel) + " x " + std::to_string(info->size)) +
                      " bytes but data_offsets span " + std::to_string(end - begin));

    TensorView v;
    v.name = name;
    v.dtype = info->dtype;
    v.shape = std::move(shape);
    v.data = data + begin;
    v.nbytes = static_cast<size_t>(end - begin);
    v.file = file;
    views.push_back(std::move(v));
  }

  // Overlap check: sort by start; any overlap shows as a start before the
  // furthest end seen so far.
  std::vector<const TensorView*> order;
  order.reserve(views.size());
  for (const auto& v : views) order.push_back(&v);
  std::sort(order.begin(), order.end(), [](const TensorView* a, const TensorView* b) {
    return a->data != b->data ? a->data < b->data : a->nbytes < b->nbytes;
  });
  const TensorView* furthest = nullptr;
  for (const TensorView* v : order) {
    if (furthest && v->data < furthest->data + furthest->nbytes)
      fail_tensor(file, v->name, "data overlaps tensor '" + furthest->name + "'");
    if (!furthest || v->data + v->nbytes > furthest->data + furthest->nbytes) furthest = v;
  }
  return views;
}

SafetensorsFile::~SafetensorsFile() = default;

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path.string();
  f->map_ = std::make_unique<MappedFile>(path);
  f->tensors_ = parse_safetensors(f->map_->data(), f->map_->size(), f->path_);
  return f;
}

}  // namespace clip
