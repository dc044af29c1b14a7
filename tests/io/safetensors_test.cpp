#include "common/temp_dir.h"
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

using namespace tcat;
using namespace tcat::io;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string le_u64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(uint8_t(v >> (8 * i)));
  return s;
}

// A file image: length prefix, header padded with spaces to a multiple of 8, then data.
std::string file_image(const std::string& header, const std::string& data) {
  std::string h = header;
  h.append((8 - h.size() % 8) % 8, ' ');
  return le_u64(h.size()) + h + data;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

uint64_t header_length(const std::string& file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(file[size_t(i)]);
  return n;
}

// Every tensor handed out must lie inside the storage it points into.
void expect_within_storage(const Tensor& t, uint64_t nbytes) {
  const char* base = static_cast<const char*>(t.storage()->data());
  const char* p = static_cast<const char*>(t.raw_data());
  if (nbytes == 0) return;
  ASSERT_GE(p, base);
  ASSERT_LE(uint64_t(p - base) + nbytes, t.storage()->bytes());
}

class Safetensors : public tcat::testing::TempDirTest {
 protected:

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Opens `bytes` as a file and returns the error message, which must name the file.
  std::string open_error(const std::string& bytes) {
    const std::string p = path("bad.safetensors");
    write_bytes(p, bytes);
    try {
      SafetensorsFile::open(p);
    } catch (const Error& e) {
      EXPECT_TRUE(has(e.what(), p)) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "open() accepted a malformed file";
    return "";
  }

};

std::vector<float> sample_values(DType dt, int n) {
  std::vector<float> v(size_t(n), 0.0f);
  for (int i = 0; i < n; ++i) {
    switch (dt) {
      case DType::F32: case DType::BF16: case DType::F16: v[size_t(i)] = float(i) * 0.5f - 2.5f; break;
      case DType::U8: v[size_t(i)] = float(i * 20); break;
      default: v[size_t(i)] = float(i - 5); break;
    }
  }
  return v;
}

const DType kAllDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::I64, DType::I32, DType::I8, DType::U8};

}  // namespace

TEST_F(Safetensors, RoundTripsEveryDTypeFromNonContiguousInput) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (DType dt : kAllDTypes) {
    Tensor src = Tensor::from_vector(sample_values(dt, 12), {3, 4}).to(dt).transpose(0, 1);
    ASSERT_FALSE(src.is_contiguous());
    tensors.emplace_back(fmt::format("t_{}", dtype_name(dt)), src);
  }
  const Tensor base = Tensor::from_vector(sample_values(DType::F32, 20), {4, 5});
  tensors.emplace_back("sliced", base.slice(1, 1, 4).slice(0, 1, 3));   // offset view, [2, 3]
  tensors.emplace_back("expanded", base.select(0, 2).unsqueeze(0).expand({3, 5}));
  tensors.emplace_back("scalar", Tensor::full({}, 7.25f));
  tensors.emplace_back("empty", Tensor::zeros({0, 3}, DType::BF16));
  const std::string p = path("all.safetensors");
  save_safetensors(p, tensors);

  const SafetensorsFile f = SafetensorsFile::open(p);
  ASSERT_EQ(f.names().size(), tensors.size());
  for (const auto& [name, src] : tensors) {
    SCOPED_TRACE(name);
    const Tensor got = f.get(name);
    EXPECT_EQ(got.dtype(), src.dtype());
    EXPECT_EQ(got.shape(), src.shape());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_EQ(got.to_vector(), src.to_vector());
    EXPECT_TRUE(got.storage()->mapped()) << "expected a zero-copy view";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw_data()) % dtype_size(got.dtype()), 0u);
  }
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(Safetensors, WritesAlignedGaplessLayoutWithPaddedHeader) {
  const std::string p = path("layout.safetensors");
  save_safetensors(p, {{"u8", Tensor::zeros({3}, DType::U8)},
                       {"f32", Tensor::zeros({2}, DType::F32)},
                       {"i64", Tensor::zeros({1}, DType::I64)},
                       {"bf16", Tensor::zeros({3}, DType::BF16)}});
  const std::string bytes = read_bytes(p);
  const uint64_t header_size = header_length(bytes);
  EXPECT_EQ(header_size % 8, 0u);

  // Decreasing element size, insertion order among equals, each tensor right after the previous.
  const SafetensorsFile f = SafetensorsFile::open(p);
  uint64_t expect_begin = 0;
  for (const char* name : {"i64", "f32", "bf16", "u8"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(f.info(name).begin, expect_begin);
    expect_begin = f.info(name).end;
  }
  EXPECT_EQ(8 + header_size + expect_begin, bytes.size());
  EXPECT_EQ(f.info("bf16").dtype, "BF16");
  EXPECT_EQ(f.info("bf16").shape, (Shape{3}));
}

TEST_F(Safetensors, MetadataRoundTrips) {
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode ✓ \"quoted\""}, {"empty", ""}};
  const std::string p = path("meta.safetensors");
  save_safetensors(p, {{"w", Tensor::full({2}, 1.0f)}}, meta);
  EXPECT_EQ(SafetensorsFile::open(p).metadata(), meta);
}

TEST_F(Safetensors, OverwriteIsAtomicAndLeavesOpenMappingsValid) {
  const std::string p = path("model.safetensors");
  save_safetensors(p, {{"w", Tensor::full({4}, 1.0f)}});
  const SafetensorsFile old_file = SafetensorsFile::open(p);
  const Tensor old_w = old_file.get("w");
  save_safetensors(p, {{"w", Tensor::full({4}, 2.0f)}});
  EXPECT_EQ(old_w.to_vector(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(SafetensorsFile::open(p).get("w").to_vector(), std::vector<float>(4, 2.0f));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"model.safetensors"}) << "temporary file left behind";
}

TEST_F(Safetensors, ReleasedPagesReadBackFromTheFile) {
  // "a" and "b" share pages (released whole), "big" spans several; "empty" has no bytes.
  const std::string p = path("model.safetensors");
  const Tensor big = Tensor::from_vector(sample_values(DType::F32, 5000), {5000});
  save_safetensors(p, {{"a", Tensor::full({3}, 1.5f)}, {"big", big}, {"b", Tensor::full({2}, -4.0f)},
                       {"empty", Tensor::empty({0})}});
  const SafetensorsFile file = SafetensorsFile::open(p);
  const Tensor a = file.get("a"), b = file.get("b"), big_view = file.get("big");
  EXPECT_EQ(a.to_vector(), std::vector<float>(3, 1.5f));
  for (const std::string& name : file.names()) file.release(name);
  EXPECT_EQ(a.to_vector(), std::vector<float>(3, 1.5f));
  EXPECT_EQ(b.to_vector(), std::vector<float>(2, -4.0f));
  EXPECT_EQ(big_view.to_vector(), big.to_vector());
  EXPECT_THROW(file.release("missing"), Error);
}

TEST_F(Safetensors, SaveRejectsBadInput) {
  const Tensor w = Tensor::full({2}, 1.0f);
  auto save_error = [&](const std::string& p, const std::vector<std::pair<std::string, Tensor>>& ts) {
    try {
      save_safetensors(p, ts);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << "save_safetensors accepted bad input";
    return std::string();
  };
  EXPECT_TRUE(has(save_error(path("a.safetensors"), {{"w", w}, {"w", w}}), "given twice"));
  EXPECT_TRUE(has(save_error(path("a.safetensors"), {{"__metadata__", w}}), "reserved"));
  EXPECT_TRUE(has(save_error(path("a.safetensors"), {{"w", Tensor()}}), "undefined"));
  EXPECT_TRUE(has(save_error(path("a.safetensors"), {{"bad\xff", w}}), "UTF-8"));
  EXPECT_TRUE(has(save_error(path("no/such/dir/a.safetensors"), {{"w", w}}), "cannot create"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(Safetensors, ConvertsDTypesTcatDoesNotComputeIn) {
  std::string data;
  json header = json::object();
  auto add = [&](const std::string& name, const std::string& dtype, Shape shape, const std::string& bytes) {
    header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  };
  auto raw = [](const auto&... values) {
    std::string s;
    (s.append(reinterpret_cast<const char*>(&values), sizeof(values)), ...);
    return s;
  };
  add("f64", "F64", {2}, raw(1.5, -2.25));
  add("u64", "U64", {1}, raw(uint64_t(1) << 40));
  add("u64_big", "U64", {1}, raw(~uint64_t(0)));
  add("u32", "U32", {1}, raw(uint32_t(4000000000u)));
  add("i16", "I16", {2}, raw(int16_t(-3), int16_t(300)));
  add("u16", "U16", {1}, raw(uint16_t(65535)));
  add("bool", "BOOL", {3}, raw(uint8_t(1), uint8_t(0), uint8_t(1)));
  // E4M3: 0x38 = 2^0 * 1.0, 0xc4 = -(2^1 * 1.5); E5M2: 0x3c = 1.0 (the high byte of fp16 1.0).
  add("e4m3", "F8_E4M3", {2}, raw(uint8_t(0x38), uint8_t(0xc4)));
  add("e5m2", "F8_E5M2", {1}, raw(uint8_t(0x3c)));
  const std::string p = path("dtypes.safetensors");
  write_bytes(p, file_image(header.dump(), data));

  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_FALSE(f.info("f64").view_dtype.has_value());
  try {
    f.get("f64");
    ADD_FAILURE() << "get() of F64 should throw";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), p) && has(e.what(), "'f64'") && has(e.what(), "F64") && has(e.what(), "get_as"))
        << e.what();
  }
  EXPECT_EQ(f.get_as("f64", DType::F32).to_vector(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(f.get_as("f64", DType::BF16).dtype(), DType::BF16);
  EXPECT_EQ(f.get_as("u64", DType::I64).to_ids(), (std::vector<int64_t>{int64_t(1) << 40}));
  EXPECT_THROW(f.get_as("u64_big", DType::I64), Error);
  EXPECT_EQ(f.get_as("u32", DType::I64).to_ids(), (std::vector<int64_t>{4000000000}));
  EXPECT_EQ(f.get_as("i16", DType::I32).to_ids(), (std::vector<int64_t>{-3, 300}));
  EXPECT_EQ(f.get_as("u16", DType::F32).to_vector(), (std::vector<float>{65535.0f}));
  EXPECT_EQ(f.get_as("e4m3", DType::F32).to_vector(), (std::vector<float>{1.0f, -3.0f}));
  EXPECT_EQ(f.get_as("e5m2", DType::F32).to_vector(), (std::vector<float>{1.0f}));

  const Tensor b = f.get("bool");
  EXPECT_EQ(b.dtype(), DType::U8);
  EXPECT_TRUE(b.storage()->mapped());
  EXPECT_EQ(b.to_ids(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f.get_as("bool", DType::F32).to_vector(), (std::vector<float>{1, 0, 1}));
}

TEST_F(Safetensors, MisalignedDataIsCopiedToAlignedMemory) {
  std::string data(1, '\x7f');
  const float values[2] = {3.5f, -1.0f};
  data.append(reinterpret_cast<const char*>(values), sizeof(values));
  const json header = {{"pad", {{"dtype", "U8"}, {"shape", {1}}, {"data_offsets", {0, 1}}}},
                       {"x", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {1, 9}}}}};
  const std::string p = path("misaligned.safetensors");
  write_bytes(p, file_image(header.dump(), data));
  const SafetensorsFile f = SafetensorsFile::open(p);
  const Tensor x = f.get("x");
  EXPECT_FALSE(x.storage()->mapped());
  EXPECT_EQ(x.to_vector(), (std::vector<float>{3.5f, -1.0f}));
  EXPECT_EQ(f.get("pad").to_ids(), (std::vector<int64_t>{127}));
}

TEST_F(Safetensors, MissingTensorErrorNamesFileAndTensor) {
  const std::string p = path("m.safetensors");
  save_safetensors(p, {{"w", Tensor::full({2}, 1.0f)}});
  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_FALSE(f.contains("nope"));
  try {
    f.get("nope");
    ADD_FAILURE() << "get() of a missing tensor should throw";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), p) && has(e.what(), "'nope'")) << e.what();
  }
}

TEST_F(Safetensors, RejectsShortFilesAndBadHeaderLengths) {
  EXPECT_THROW(SafetensorsFile::open(path("missing.safetensors")), Error);
  EXPECT_TRUE(has(open_error(""), "shorter than the 8-byte header length"));
  EXPECT_TRUE(has(open_error("\x08\x00\x00"), "shorter than the 8-byte header length"));
  EXPECT_TRUE(has(open_error(le_u64(100) + "{}"), "exceeds the 2 bytes that follow"));
  EXPECT_TRUE(has(open_error(le_u64(~uint64_t(0)) + "{}"), "exceeds the limit"));

  // A header length over the limit is rejected even when the file is big enough to hold it
  // (a sparse file, so this costs no disk space).
  const std::string p = path("big.safetensors");
  write_bytes(p, le_u64(kMaxSafetensorsHeaderBytes + 1));
  fs::resize_file(p, kMaxSafetensorsHeaderBytes + 64);
  try {
    SafetensorsFile::open(p);
    ADD_FAILURE() << "huge header accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "exceeds the limit")) << e.what();
  }
}

TEST_F(Safetensors, RejectsTruncatedFile) {
  const std::string p = path("full.safetensors");
  save_safetensors(p, {{"a", Tensor::full({8}, 1.0f)}, {"b", Tensor::full({8}, 2.0f)}});
  const std::string bytes = read_bytes(p);
  EXPECT_TRUE(has(open_error(bytes.substr(0, bytes.size() - 1)), "beyond the 63-byte data section"));
  EXPECT_TRUE(has(open_error(bytes.substr(0, 20)), "that follow it (truncated file?)"));
}

TEST_F(Safetensors, RejectsMalformedHeaders) {
  struct Case {
    const char* header;
    const char* error;
  };
  const std::string f32x2 = R"("dtype": "F32", "shape": [2])";
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {R"({"a": )", "not valid JSON"},
      {"{}x", "not valid JSON"},
      {"{\"a\xff\": {}}", "not valid JSON"},
      {"[1, 2]", "header must be a JSON object, got array"},
      {R"({"a": 5})", "tensor 'a': entry must be an object, got number"},
      {R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", "tensor 'a': missing field 'dtype'"},
      {R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", "tensor 'a': missing field 'shape'"},
      {R"({"a": {"dtype": "F32", "shape": [2]}})", "tensor 'a': missing field 'data_offsets'"},
      {R"({"a": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", "field 'dtype' must be string, got number"},
      {R"({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", "field 'shape' must be array, got string"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": {"b": 0}}})", "field 'data_offsets' must be array"},
      {R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", "shape[0] must be a non-negative integer"},
      {R"({"a": {"dtype": "F32", "shape": [1, 2.5], "data_offsets": [0, 8]}})", "shape[1] must be a non-negative integer"},
      {R"({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", "shape[0] must be a non-negative integer"},
      {R"({"a": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}})", "shape[0] must be a non-negative integer"},
      {R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]}})", "too many elements"},
      {R"({"a": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [0, 0]}})", "too many elements"},
      {R"({"a": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 8]}})", "shape[0] must be a non-negative integer"},
      {R"({"a": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 8]}})", "is too large"},
      {R"({"a": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}})", "tensor 'a': unknown dtype 'F17'"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8]}})", "data_offsets must be [begin, end]"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 16]}})", "data_offsets must be [begin, end]"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-1, 7]}})", "data_offsets[0] must be a non-negative"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]}})", "data_offsets[1] must be a non-negative"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "end before begin"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}})", "beyond the 16-byte data section"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "F32 [2] needs 8 bytes but data_offsets [0, 4] hold 4"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", "duplicate key 'a'"},
      {R"({"a": {"dtype": "F32", "dtype": "I32", "shape": [2], "data_offsets": [0, 8]}})", "duplicate key 'dtype'"},
      {R"({"__metadata__": {"k": 1}})", "__metadata__ value 'k' must be a string, got number"},
      {R"({"__metadata__": ["k"]})", "__metadata__ must be an object, got array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    const std::string message = open_error(file_image(c.header, std::string(16, '\0')));
    EXPECT_TRUE(has(message, c.error)) << message;
  }
  // Nesting far deeper than any valid header: one clear error, no stack exhaustion.
  EXPECT_TRUE(has(open_error(file_image(std::string(100000, '['), "")), "nested deeper"));
}

TEST_F(Safetensors, AcceptsEmptyTensorsInsideOthersAndHoles) {
  const json header = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                       {"e", {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {4, 4}}}},
                       {"b", {{"dtype", "I8"}, {"shape", {2}}, {"data_offsets", {12, 14}}}}};
  const std::string p = path("holes.safetensors");
  write_bytes(p, file_image(header.dump(), std::string(16, '\1')));
  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b", "e"}));
  EXPECT_EQ(f.get("e").numel(), 0);
  EXPECT_EQ(f.get("b").to_ids(), (std::vector<int64_t>{1, 1}));
}

TEST_F(Safetensors, FuzzedHeadersFailCleanlyOrStayInBounds) {
  const std::string p = path("seed.safetensors");
  save_safetensors(p,
                   {{"w", Tensor::from_vector(sample_values(DType::F32, 6), {2, 3})},
                    {"ids", Tensor::from_ids({1, 2, 3}, {3})},
                    {"h", Tensor::full({4}, 0.5f).to(DType::BF16)},
                    {"m", Tensor::zeros({5}, DType::U8)}},
                   {{"format", "pt"}});
  const std::string seed = read_bytes(p);
  const size_t header_end = 8 + header_length(seed);
  const std::string interesting = "{}[]\",:0123456789-.eE \\";
  // Rewriting digits keeps the JSON valid and reaches the shape/offset checks and get().
  std::vector<size_t> digits;
  for (size_t i = 8; i < header_end; ++i)
    if (std::isdigit(uint8_t(seed[i]))) digits.push_back(i);
  std::mt19937_64 rng(20240611);
  const std::string fuzz_path = path("fuzz.safetensors");
  int opened = 0, loaded = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bytes = seed;
    const int mutations = 1 + int(rng() % 4);
    const bool digits_only = iter % 2 == 0;
    for (int m = 0; m < mutations; ++m) {
      if (digits_only) {
        bytes[digits[rng() % digits.size()]] = char('0' + rng() % 10);
      } else {
        const size_t pos = rng() % 16 == 0 ? rng() % 8 : 8 + rng() % (header_end - 8);
        bytes[pos] = rng() % 2 ? interesting[rng() % interesting.size()] : char(rng() % 256);
      }
    }
    if (rng() % 10 == 0) bytes.resize(rng() % bytes.size());
    write_bytes(fuzz_path, bytes);
    SafetensorsFile f;
    try {
      f = SafetensorsFile::open(fuzz_path);
    } catch (const Error&) {
      continue;
    }
    ++opened;
    const uint64_t header_size = header_length(bytes);
    for (const std::string& name : f.names()) {
      const TensorInfo& ti = f.info(name);
      ASSERT_LE(ti.begin, ti.end);
      ASSERT_LE(8 + header_size + ti.end, bytes.size()) << name;
      try {
        const Tensor t = ti.view_dtype ? f.get(name) : f.get_as(name, DType::F32);
        expect_within_storage(t, uint64_t(t.numel()) * dtype_size(t.dtype()));
        if (t.storage()->mapped()) {
          EXPECT_EQ(static_cast<const char*>(t.raw_data()) - static_cast<const char*>(t.storage()->data()),
                    int64_t(8 + header_size + ti.begin));
        }
        t.to_vector();
        ++loaded;
      } catch (const Error&) {
      }
    }
  }
  EXPECT_GT(opened, 0) << "no mutation produced a loadable file";
  EXPECT_GT(loaded, 0) << "no mutation produced a loadable tensor; get() is not being exercised";
}

// Structured fuzzing: well-formed JSON with random dtypes, shapes and offsets reaches the layout
// checks and get() far more often than byte mutation does.
TEST_F(Safetensors, RandomLayoutsFailCleanlyOrStayInBounds) {
  const char* dtypes[] = {"F32", "BF16", "F16", "I64", "I32", "I8", "U8", "BOOL", "F64",
                          "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2"};
  const size_t sizes[] = {4, 2, 2, 8, 4, 1, 1, 1, 8, 2, 2, 4, 8, 1, 1};
  std::mt19937_64 rng(7);
  const std::string p = path("random.safetensors");
  int opened = 0, loaded = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    const uint64_t data_size = rng() % 64;
    json header = json::object();
    const int n = 1 + int(rng() % 4);
    for (int k = 0; k < n; ++k) {
      const size_t d = rng() % std::size(dtypes);
      Shape shape(rng() % 3);
      for (int64_t& dim : shape) dim = int64_t(rng() % 5);
      const uint64_t nbytes = uint64_t(shape_numel(shape)) * sizes[d];
      const uint64_t begin = rng() % (data_size + 4);
      const uint64_t end = rng() % 8 ? begin + nbytes : rng() % (data_size + 8);
      header[fmt::format("t{}", k)] = {{"dtype", dtypes[d]}, {"shape", shape}, {"data_offsets", {begin, end}}};
    }
    std::string data(data_size, '\0');
    for (char& c : data) c = char(rng() % 256);
    const std::string bytes = file_image(header.dump(), data);
    write_bytes(p, bytes);
    SafetensorsFile f;
    try {
      f = SafetensorsFile::open(p);
    } catch (const Error&) {
      continue;
    }
    ++opened;
    for (const std::string& name : f.names()) {
      const TensorInfo& ti = f.info(name);
      ASSERT_LE(8 + header_length(bytes) + ti.end, bytes.size()) << name;
      try {
        const Tensor t = ti.view_dtype ? f.get(name) : f.get_as(name, DType::F32);
        expect_within_storage(t, uint64_t(t.numel()) * dtype_size(t.dtype()));
        t.to_vector();
        ++loaded;
      } catch (const Error&) {
      }
    }
  }
  EXPECT_GT(opened, 200);
  EXPECT_GT(loaded, 200);
}

TEST_F(Safetensors, ShardedIndexOpensEachShardOnce) {
  save_safetensors(path("model-00001-of-00002.safetensors"),
                   {{"a", Tensor::full({2}, 1.0f)}, {"b", Tensor::full({3}, 2.0f)}});
  save_safetensors(path("model-00002-of-00002.safetensors"), {{"c", Tensor::from_ids({7, 8}, {2})}});
  const json index = {{"metadata", {{"total_size", 28}}},
                      {"weight_map",
                       {{"a", "model-00001-of-00002.safetensors"},
                        {"b", "model-00001-of-00002.safetensors"},
                        {"c", "model-00002-of-00002.safetensors"}}}};
  const std::string index_path = path("model.safetensors.index.json");
  write_bytes(index_path, index.dump(2));

  const ShardedSafetensors s = ShardedSafetensors::open(index_path);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(s.contains("c"));
  EXPECT_EQ(&s.shard("a"), &s.shard("b"));
  EXPECT_NE(&s.shard("a"), &s.shard("c"));
  EXPECT_EQ(s.get("b").to_vector(), std::vector<float>(3, 2.0f));
  EXPECT_EQ(s.get("c").to_ids(), (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(s.get_as("c", DType::F32).to_vector(), (std::vector<float>{7, 8}));
  EXPECT_EQ(s.info("a").shape, (Shape{2}));
  try {
    s.get("zzz");
    ADD_FAILURE() << "missing tensor accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), index_path) && has(e.what(), "'zzz'")) << e.what();
  }
}

TEST_F(Safetensors, ShardedIndexErrors) {
  save_safetensors(path("shard.safetensors"), {{"a", Tensor::full({2}, 1.0f)}});
  auto index_error = [&](const std::string& text) {
    const std::string p = path("model.safetensors.index.json");
    write_bytes(p, text);
    try {
      ShardedSafetensors::open(p);
    } catch (const Error& e) {
      EXPECT_TRUE(has(e.what(), "model.safetensors.index.json")) << e.what();
      return std::string(e.what());
    }
    ADD_FAILURE() << "bad index accepted: " << text;
    return std::string();
  };
  EXPECT_TRUE(has(index_error("{"), "not valid JSON"));
  EXPECT_TRUE(has(index_error(R"({"metadata": {}})"), "\"weight_map\""));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"a": 3}})"), "must be a file name"));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"a": "../shard.safetensors"}})"), "not a file next to the index"));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"a": "/etc/passwd"}})"), "not a file next to the index"));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"a": "shard.safetensors", "a": "shard.safetensors"}})"),
                  "duplicate key 'a'"));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"x": "shard.safetensors"}})"), "which lacks it"));
  EXPECT_TRUE(has(index_error(R"({"weight_map": {"a": "absent.safetensors"}})"), "cannot open"));
}

TEST(SafetensorsFixture, ReadsHuggingFaceGpt2) {
  const char* env = std::getenv("TCAT_HF_FIXTURES");
  const fs::path root = env ? fs::path(env) : fs::path(TCAT_SOURCE_DIR "/../shared/fixtures/hf-tiny");
  const fs::path file = root / "gpt2" / "model.safetensors";
  if (!fs::exists(file)) GTEST_SKIP() << "fixture not present: " << file;

  const SafetensorsFile f = SafetensorsFile::open(file.string());
  EXPECT_EQ(f.names().size(), 28u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const Tensor w = f.get("transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(w.desc(), "f32[32, 96]");
  EXPECT_TRUE(w.storage()->mapped());
  // Reference values read independently with /usr/bin/python3 + numpy: parse the header with json,
  // np.frombuffer(raw bytes of data_offsets, dtype='<f4').reshape(shape), printed with '%.9g'.
  EXPECT_EQ(w.at({3, 7}), -0.243088394f);
  EXPECT_EQ(w.at({31, 95}), 0.15568845f);
  const Tensor wte = f.get("transformer.wte.weight");
  EXPECT_EQ(wte.desc(), "f32[512, 32]");
  EXPECT_EQ(wte.at({0, 0}), -0.313857436f);
  EXPECT_EQ(wte.at({511, 31}), -0.480871767f);
  double sum = 0;
  for (float v : f.get("transformer.ln_f.weight").to_vector()) sum += v;
  EXPECT_NEAR(sum, 30.5368202, 1e-5);
}
