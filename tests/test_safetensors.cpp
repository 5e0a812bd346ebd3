// safetensors parsing, float conversion and model-folder weight sources:
// valid files round-trip, and every malformed file is refused with a
// clip::Error naming the file (and the tensor, where there is one).
#include <gtest/gtest.h>

#include <cmath>

#include "clip/error.h"
#include "clip/model/to_f32.h"
#include "clip/model/weight_source.h"
#include "safetensors_writer.h"
#include "test_util.h"

using namespace cliptest;

namespace {

std::string parse_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { clip::parse_safetensors(bytes.data(), bytes.size(), "bad.safetensors"); });
}

// A header for one F32 tensor "w" of `shape` at `offsets`, with `data_bytes` of data.
std::vector<uint8_t> one_tensor(const std::string& dtype, const std::string& shape, const std::string& offsets,
                                size_t data_bytes) {
  return safetensors_raw(
      "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}",
      std::vector<uint8_t>(data_bytes));
}

}  // namespace

TEST(Safetensors, RoundTripEachFloatDtype) {
  // Values exactly representable in every dtype, so all must come back bit-exact.
  const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 0.125f, 3.0f, -1024.0f, 0.75f};
  for (const std::string dtype : {"F32", "F16", "BF16", "F64"}) {
    TempDir tmp;
    const auto path = tmp.path() / "t.safetensors";
    write_file(path, safetensors_bytes({{"a.weight", dtype, {2, 4}, encode(values, dtype)},
                                        {"scalar", dtype, {}, encode({7.0f}, dtype)}}));
    const auto f = clip::SafetensorsFile::open(path);
    ASSERT_EQ(f->tensors().size(), 2u) << dtype;  // __metadata__ is not a tensor
    const clip::TensorView* a = nullptr;
    for (const auto& t : f->tensors())
      if (t.name == "a.weight") a = &t;
    ASSERT_NE(a, nullptr);
    EXPECT_STREQ(clip::dtype_name(a->dtype), dtype.c_str());
    EXPECT_EQ(a->file, path.string());
    const clip::Tensor t = clip::to_f32(*a, {2, 4});
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(t.data[i], values[i]) << dtype << " element " << i;
      EXPECT_EQ(std::signbit(t.data[i]), std::signbit(values[i])) << dtype << " element " << i;
    }
  }
}

TEST(Safetensors, Fp16ConversionIsExactForEveryBitPattern) {
  // Reference: the value formula of IEEE binary16, by ldexp.
  std::vector<uint8_t> bytes(65536 * 2);
  for (uint32_t h = 0; h < 65536; ++h) {
    bytes[2 * h] = static_cast<uint8_t>(h);
    bytes[2 * h + 1] = static_cast<uint8_t>(h >> 8);
  }
  clip::TensorView v{"all", clip::DType::F16, {65536}, bytes.data(), bytes.size(), "mem"};
  const clip::Tensor t = clip::to_f32(v, {65536});
  for (uint32_t h = 0; h < 65536; ++h) {
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float got = t.data[h];
    if (e == 31 && m != 0) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      uint32_t bits;
      std::memcpy(&bits, &got, 4);
      ASSERT_EQ((bits >> 13) & 0x3ff, static_cast<uint32_t>(m)) << "NaN payload of " << std::hex << h;
    } else {
      const float mag = e == 0    ? std::ldexp(static_cast<float>(m), -24)
                        : e == 31 ? INFINITY
                                  : std::ldexp(static_cast<float>(m | 0x400), e - 25);
      ASSERT_EQ(got, (h & 0x8000) ? -mag : mag) << std::hex << h;
    }
    ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
  }
}

TEST(Safetensors, WriterRoundingMatchesReader) {
  // The writer's float->half/bf16 rounding is what quantize() predicts and what
  // to_f32 reads back, including values that round (1/3) and subnormals.
  const std::vector<float> values = {1.0f / 3, -1e-6f, 3e-8f, 65504.0f, 1e5f, -7.77e-5f};
  for (const std::string dtype : {"F16", "BF16"}) {
    const auto bytes = encode(values, dtype);
    clip::TensorView v{"x",  dtype == "F16" ? clip::DType::F16 : clip::DType::BF16, {6}, bytes.data(), bytes.size(),
                       "mem"};
    const clip::Tensor t = clip::to_f32(v, {6});
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_EQ(t.data[i], quantize(values[i], dtype)) << dtype << " " << values[i];
  }
  EXPECT_EQ(quantize(65504.0f, "F16"), 65504.0f);
  EXPECT_TRUE(std::isinf(quantize(1e5f, "F16")));
  EXPECT_EQ(quantize(3e-8f, "F16"), std::ldexp(1.0f, -24));  // smallest subnormal
}

TEST(Safetensors, UnalignedDataIsRead) {
  // Offsets are byte offsets: a tensor may start at an odd address.
  const std::vector<float> values = {1.5f, -2.0f, 3.25f};
  const std::pair<clip::DType, std::string> dtypes[] = {
      {clip::DType::F32, "F32"}, {clip::DType::F16, "F16"}, {clip::DType::BF16, "BF16"}, {clip::DType::F64, "F64"}};
  for (const auto& [dt, name] : dtypes) {
    const auto enc = encode(values, name);
    std::vector<uint8_t> buf(1 + enc.size());
    std::copy(enc.begin(), enc.end(), buf.begin() + 1);
    clip::TensorView v{"odd", dt, {3}, buf.data() + 1, enc.size(), "mem"};
    EXPECT_EQ(clip::to_f32(v, {3}).data, values) << name;
  }
  // And through the parser: a 2-byte tensor first pushes the F32 one off alignment.
  const auto bytes =
      safetensors_bytes({{"pad", "BF16", {1}, encode({1.0f}, "BF16")}, {"w", "F32", {3}, encode(values, "F32")}});
  const auto views = clip::parse_safetensors(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(views.size(), 2u);
  const auto& w = views[0].name == "w" ? views[0] : views[1];
  EXPECT_EQ(clip::to_f32(w, {3}).data, values);
}

TEST(Safetensors, EmptyHeaderAndMetadataOnly) {
  const auto empty = safetensors_raw("{}");
  EXPECT_TRUE(clip::parse_safetensors(empty.data(), empty.size(), "mem").empty());
  const auto meta = safetensors_raw(R"({"__metadata__":{"format":"pt"}}  )");
  EXPECT_TRUE(clip::parse_safetensors(meta.data(), meta.size(), "mem").empty());
}

TEST(Safetensors, ZeroSizedTensorsAreFine) {
  const auto bytes = safetensors_bytes({{"empty", "F32", {0, 4}, {}}, {"w", "F32", {1}, encode({2.0f}, "F32")}});
  const auto views = clip::parse_safetensors(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(views.size(), 2u);
}

TEST(SafetensorsBad, TooShort) {
  for (size_t n : {0, 1, 7}) {
    const std::vector<uint8_t> bytes(n, 0);
    const auto msg = parse_error(bytes);
    EXPECT_CONTAINS(msg, "bad.safetensors");
    EXPECT_CONTAINS(msg, "too short");
  }
}

TEST(SafetensorsBad, HeaderLengthLargerThanFile) {
  auto bytes = safetensors_raw("{}");
  bytes[0] = 200;  // claims 200 header bytes, has 2
  const auto msg = parse_error(bytes);
  EXPECT_CONTAINS(msg, "bad.safetensors");
  EXPECT_CONTAINS(msg, "header length 200 is larger than the file");
}

TEST(SafetensorsBad, AbsurdHeaderLength) {
  for (uint64_t len : {uint64_t{1} << 40, ~uint64_t{0}, uint64_t{100'000'001}}) {
    std::vector<uint8_t> bytes(16, ' ');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(len >> (8 * i));
    const auto msg = parse_error(bytes);
    EXPECT_CONTAINS(msg, "bad.safetensors");
    EXPECT_CONTAINS(msg, "header length");
  }
}

TEST(SafetensorsBad, HeaderNotJsonOrNotObject) {
  EXPECT_CONTAINS(parse_error(safetensors_raw("{\"w\": ")), "not valid JSON");
  EXPECT_CONTAINS(parse_error(safetensors_raw("\x89PNG")), "not valid JSON");
  EXPECT_CONTAINS(parse_error(safetensors_raw("[1, 2]")), "not a JSON object");
  EXPECT_CONTAINS(parse_error(safetensors_raw("\"str\"")), "not a JSON object");
  EXPECT_CONTAINS(parse_error(safetensors_raw("{\"w\": 3}")), "tensor 'w': entry is not");
  EXPECT_CONTAINS(parse_error(safetensors_raw("{\"w\": 3}")), "bad.safetensors");
}

TEST(SafetensorsBad, UnknownOrMissingDtype) {
  for (const char* dt : {"F8_E4M3", "Q4_0", "f32", ""}) {
    const auto msg = parse_error(one_tensor(dt, "[1]", "[0,4]", 4));
    EXPECT_CONTAINS(msg, "bad.safetensors");
    EXPECT_CONTAINS(msg, "tensor 'w'");
    EXPECT_CONTAINS(msg, std::string("dtype '") + dt + "'");
  }
  EXPECT_CONTAINS(parse_error(safetensors_raw(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", std::vector<uint8_t>(4))),
                  "tensor 'w': missing \"dtype\"");
}

TEST(SafetensorsBad, BadShape) {
  for (const char* shape : {"[-1]", "[2.5]", "[\"3\"]", "3", "null", "[[1]]", "[true]", "[9223372036854775808]"}) {
    const auto msg = parse_error(one_tensor("F32", shape, "[0,4]", 4));
    EXPECT_CONTAINS(msg, "bad.safetensors");
    EXPECT_CONTAINS(msg, "tensor 'w'");
    EXPECT_CONTAINS(msg, "shape");
  }
}

TEST(SafetensorsBad, BadDataOffsets) {
  for (const char* off : {"[4]", "[0,4,8]", "[-4,0]", "[0,\"4\"]", "null", "{}", "[0.0,4]"}) {
    const auto msg = parse_error(one_tensor("F32", "[1]", off, 4));
    EXPECT_CONTAINS(msg, "tensor 'w'");
    EXPECT_CONTAINS(msg, "data_offsets");
  }
  EXPECT_CONTAINS(parse_error(one_tensor("F32", "[0]", "[4,0]", 4)), "end before they begin");
}

TEST(SafetensorsBad, OffsetsOutOfRange) {
  const auto msg = parse_error(one_tensor("F32", "[2]", "[0,8]", 4));
  EXPECT_CONTAINS(msg, "bad.safetensors");
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "run past the data (4 bytes)");
  // Huge offsets must not wrap around.
  EXPECT_CONTAINS(parse_error(one_tensor("F32", "[1]", "[18446744073709551612,18446744073709551616]", 4)),
                  "tensor 'w'");
}

TEST(SafetensorsBad, SizeDisagreesWithShape) {
  EXPECT_CONTAINS(parse_error(one_tensor("F32", "[3]", "[0,8]", 8)), "needs 3 x 4 bytes");
  EXPECT_CONTAINS(parse_error(one_tensor("F16", "[3]", "[0,8]", 8)), "tensor 'w'");
  // numel overflows 64 bits: must be caught, not wrapped to a small number.
  const auto msg = parse_error(one_tensor("F32", "[4294967296,4294967296,16]", "[0,0]", 0));
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "more than 2^64");
  // numel fits but numel * 4 wraps to 0.
  EXPECT_CONTAINS(parse_error(one_tensor("F32", "[4611686018427387904]", "[0,0]", 0)), "tensor 'w'");
}

TEST(SafetensorsBad, OverlappingTensors) {
  const auto bytes = safetensors_raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                     std::vector<uint8_t>(12));
  const auto msg = parse_error(bytes);
  EXPECT_CONTAINS(msg, "bad.safetensors");
  EXPECT_CONTAINS(msg, "tensor 'b'");
  EXPECT_CONTAINS(msg, "overlaps tensor 'a'");
  // One tensor entirely inside another, listed first.
  const auto inside = safetensors_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                                      std::vector<uint8_t>(16));
  EXPECT_CONTAINS(parse_error(inside), "overlaps tensor 'b'");
}

TEST(SafetensorsBad, DuplicateNames) {
  const auto bytes = safetensors_raw(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                     std::vector<uint8_t>(8));
  const auto msg = parse_error(bytes);
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "listed twice");
}

TEST(SafetensorsBad, NestedKeysAreNotDuplicates) {
  // Same key at depth 2 in different entries is normal ("dtype" in each).
  const auto bytes =
      safetensors_bytes({{"a", "F32", {1}, encode({1.0f}, "F32")}, {"b", "F32", {1}, encode({2.0f}, "F32")}});
  EXPECT_EQ(clip::parse_safetensors(bytes.data(), bytes.size(), "mem").size(), 2u);
}

TEST(SafetensorsFileBad, MissingEmptyTruncatedDirectory) {
  TempDir tmp;
  const auto missing = tmp.path() / "nope.safetensors";
  auto msg = error_of([&] { clip::SafetensorsFile::open(missing); });
  EXPECT_CONTAINS(msg, missing.string());
  EXPECT_CONTAINS(msg, "cannot open");

  const auto empty = tmp.path() / "empty.safetensors";
  write_file(empty, {});
  msg = error_of([&] { clip::SafetensorsFile::open(empty); });
  EXPECT_CONTAINS(msg, empty.string());
  EXPECT_CONTAINS(msg, "too short");

  // A valid file cut short: the last tensor's data runs past the end.
  const auto trunc = tmp.path() / "trunc.safetensors";
  auto bytes = safetensors_bytes(
      {{"a", "F32", {4}, encode({1, 2, 3, 4}, "F32")}, {"b", "F32", {4}, encode({1, 2, 3, 4}, "F32")}});
  bytes.resize(bytes.size() - 3);
  write_file(trunc, bytes);
  msg = error_of([&] { clip::SafetensorsFile::open(trunc); });
  EXPECT_CONTAINS(msg, trunc.string());
  EXPECT_CONTAINS(msg, "tensor 'b'");
  EXPECT_CONTAINS(msg, "truncated");

  // Cut inside the header.
  bytes.resize(20);
  write_file(trunc, bytes);
  msg = error_of([&] { clip::SafetensorsFile::open(trunc); });
  EXPECT_CONTAINS(msg, trunc.string());
  EXPECT_CONTAINS(msg, "larger than the file");

  msg = error_of([&] { clip::SafetensorsFile::open(tmp.path()); });
  EXPECT_CONTAINS(msg, tmp.path().string());
}

TEST(ToF32, RejectsWrongShapeAndIntegerDtypes) {
  const auto bytes = encode({1, 2, 3, 4}, "F32");
  clip::TensorView v{"layer.w", clip::DType::F32, {2, 2}, bytes.data(), bytes.size(), "m.st"};
  auto msg = error_of([&] { clip::to_f32(v, {4}); });
  EXPECT_CONTAINS(msg, "m.st: tensor 'layer.w' has shape [2, 2], expected [4]");
  v.dtype = clip::DType::I32;
  msg = error_of([&] { clip::to_f32(v, {2, 2}); });
  EXPECT_CONTAINS(msg, "tensor 'layer.w' has dtype I32");
  v.dtype = clip::DType::F16;  // 16 bytes for 4 halves: inconsistent hand-made view
  msg = error_of([&] { clip::to_f32(v, {2, 2}); });
  EXPECT_CONTAINS(msg, "tensor 'layer.w' holds 16 bytes");
}

// ---- folders -----------------------------------------------------------------

TEST(WeightSource, SingleFile) {
  TempDir tmp;
  write_file(tmp.path() / "model.safetensors", safetensors_bytes({{"a", "F32", {1}, encode({1.0f}, "F32")},
                                                                  {"b", "F16", {2}, encode({2.0f, 3.0f}, "F16")}}));
  const auto src = clip::WeightSource::open_folder(tmp.path());
  EXPECT_EQ(src.names(), (std::vector<std::string>{"a", "b"}));
  ASSERT_NE(src.find("b"), nullptr);
  EXPECT_EQ(clip::to_f32(*src.find("b"), {2}).data, (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(src.find("c"), nullptr);
}

TEST(WeightSource, ShardedFolder) {
  TempDir tmp;
  TinyClipSpec spec;
  const auto tensors = tiny_clip_tensors(spec);
  write_clip_folder(tmp.path(), tiny_clip_config(spec), tensors, "BF16", 4);
  ASSERT_TRUE(fs::exists(tmp.path() / "model-00004-of-00004.safetensors"));
  const auto src = clip::WeightSource::open_folder(tmp.path());
  EXPECT_EQ(src.names().size(), tensors.size());
  for (const auto& t : tensors) {
    const clip::TensorView* v = src.find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    const auto got = clip::to_f32(*v, t.shape);
    for (size_t i = 0; i < t.values.size(); ++i) ASSERT_EQ(got.data[i], quantize(t.values[i], "BF16")) << t.name;
  }
}

TEST(WeightSourceBad, MissingFolderOrWeights) {
  TempDir tmp;
  auto msg = error_of([&] { clip::WeightSource::open_folder(tmp.path() / "none"); });
  EXPECT_CONTAINS(msg, (tmp.path() / "none").string());
  msg = error_of([&] { clip::WeightSource::open_folder(tmp.path()); });
  EXPECT_CONTAINS(msg, tmp.path().string());
  EXPECT_CONTAINS(msg, "no model.safetensors");
  write_text(tmp.path() / "pytorch_model.bin", "x");
  EXPECT_CONTAINS(error_of([&] { clip::WeightSource::open_folder(tmp.path()); }), "pytorch_model.bin");
}

class ShardedBad : public ::testing::Test {
 protected:
  void SetUp() override { write_clip_folder(tmp.path(), tiny_clip_config(spec), tiny_clip_tensors(spec), "F32", 3); }
  std::string open_error() {
    return error_of([&] { clip::WeightSource::open_folder(tmp.path()); });
  }
  fs::path index() const { return tmp.path() / "model.safetensors.index.json"; }
  TempDir tmp;
  TinyClipSpec spec;
};

TEST_F(ShardedBad, MissingShardIsNamed) {
  fs::remove(tmp.path() / "model-00002-of-00003.safetensors");
  const auto msg = open_error();
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, "model-00002-of-00003.safetensors");
}

TEST_F(ShardedBad, IndexNotJson) {
  write_text(index(), "{\"weight_map\": ");
  const auto msg = open_error();
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, "not valid JSON");
  write_text(index(), "{\"metadata\": {}}");
  EXPECT_CONTAINS(open_error(), "weight_map");
}

TEST_F(ShardedBad, ShardNameOutsideFolder) {
  write_text(index(), R"({"weight_map": {"a": "../model-00001-of-00003.safetensors"}})");
  EXPECT_CONTAINS(open_error(), "tensor 'a'");
}

TEST_F(ShardedBad, TensorInTwoShards) {
  // Shard 3 gets a copy of a tensor that shard 1 holds.
  write_file(tmp.path() / "model-00003-of-00003.safetensors",
             safetensors_bytes({{"logit_scale", "F32", {}, encode({1.0f}, "F32")}}));
  const auto msg = open_error();
  EXPECT_CONTAINS(msg, "tensor 'logit_scale'");
  EXPECT_CONTAINS(msg, "model-00001-of-00003.safetensors");
  EXPECT_CONTAINS(msg, "model-00003-of-00003.safetensors");
}

TEST_F(ShardedBad, IndexPointsToWrongShard) {
  auto idx = json::parse(std::ifstream(index()));
  idx["weight_map"]["logit_scale"] = "model-00002-of-00003.safetensors";
  write_text(index(), idx.dump());
  const auto msg = open_error();
  EXPECT_CONTAINS(msg, "tensor 'logit_scale' is mapped to model-00002-of-00003.safetensors");
}

TEST_F(ShardedBad, CorruptShardIsNamed) {
  const auto shard = tmp.path() / "model-00002-of-00003.safetensors";
  write_file(shard, safetensors_raw("not json"));
  const auto msg = open_error();
  EXPECT_CONTAINS(msg, shard.string());
}
