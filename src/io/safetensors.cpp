#include "io/safetensors.h"

#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

namespace tcat::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

using nlohmann::json;

namespace {

template <typename... Args>
[[noreturn]] void file_error(const std::string& path, fmt::format_string<Args...> f, Args&&... args) {
  fail("safetensors file '{}': {}", path, fmt::format(f, std::forward<Args>(args)...));
}

// Decodes `shape`'s elements of type Src (unaligned, little-endian) into a new Dst tensor.
template <typename Src, typename Dst, typename Fn>
Tensor decode(const char* src, const Shape& shape, Fn convert) {
  Tensor out = Tensor::empty(shape, dtype_of<Dst>());
  Dst* dst = out.data<Dst>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) {
    Src v;
    std::memcpy(&v, src + size_t(i) * sizeof(Src), sizeof(Src));
    dst[i] = convert(v);
  }
  return out;
}

float f8_e4m3_to_float(uint8_t b) {  // the "FN" variant: no infinities, 0x7f/0xff are NaN
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 0xf, mant = b & 0x7;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(float(mant), -9);
  return sign * std::ldexp(float(8 + mant), exp - 10);
}

float f8_e5m2_to_float(uint8_t b) { return fp16_to_float(fp16{uint16_t(b << 8)}); }

// Converts a tensor of a dtype tcat does not compute in to the nearest one that holds its values;
// `what` names the tensor in errors.
using Widen = Tensor (*)(const char* src, const Shape& shape, const std::string& what);

struct FileDType {
  const char* name;
  size_t size;
  std::optional<DType> view;  // the tcat dtype that views these bytes as they are
  Widen widen;                // set when `view` is empty
};

const FileDType kFileDTypes[] = {
    {"F32", 4, DType::F32, nullptr},
    {"BF16", 2, DType::BF16, nullptr},
    {"F16", 2, DType::F16, nullptr},
    {"I64", 8, DType::I64, nullptr},
    {"I32", 4, DType::I32, nullptr},
    {"I8", 1, DType::I8, nullptr},
    {"U8", 1, DType::U8, nullptr},
    {"BOOL", 1, DType::U8, nullptr},
    {"F64", 8, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) {
       return decode<double, float>(s, sh, [](double v) { return float(v); });
     }},
    {"F8_E4M3", 1, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) { return decode<uint8_t, float>(s, sh, f8_e4m3_to_float); }},
    {"F8_E5M2", 1, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) { return decode<uint8_t, float>(s, sh, f8_e5m2_to_float); }},
    {"I16", 2, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) {
       return decode<int16_t, int32_t>(s, sh, [](int16_t v) { return int32_t(v); });
     }},
    {"U16", 2, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) {
       return decode<uint16_t, int32_t>(s, sh, [](uint16_t v) { return int32_t(v); });
     }},
    {"U32", 4, std::nullopt,
     [](const char* s, const Shape& sh, const std::string&) {
       return decode<uint32_t, int64_t>(s, sh, [](uint32_t v) { return int64_t(v); });
     }},
    {"U64", 8, std::nullopt,
     [](const char* s, const Shape& sh, const std::string& what) {
       return decode<uint64_t, int64_t>(s, sh, [&](uint64_t v) {
         TCAT_CHECK(v <= uint64_t(std::numeric_limits<int64_t>::max()), "{}: U64 value {} does not fit in i64",
                    what, v);
         return int64_t(v);
       });
     }},
};

const FileDType* find_file_dtype(const std::string& name) {
  for (const FileDType& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* file_dtype_name(DType t) {
  for (const FileDType& d : kFileDTypes)
    if (d.view == t) return d.name;
  fail("safetensors: no file dtype for {}", dtype_name(t));
}

// Deeper nesting than any valid header needs; bounds the parser's work on hostile input.
constexpr size_t kMaxJsonDepth = 64;

// Parses untrusted JSON, rejecting duplicate keys (which nlohmann would silently resolve to the last).
json parse_json(const std::string& path, const char* text, size_t size) {
  std::vector<std::set<std::string>> open_keys;  // one entry per open object or array
  const json::parser_callback_t check = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (open_keys.size() >= kMaxJsonDepth) file_error(path, "JSON nested deeper than {} levels", kMaxJsonDepth);
        open_keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        open_keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_keys.back().insert(parsed.get<std::string>()).second)
          file_error(path, "duplicate key '{}' in JSON object", parsed.get<std::string>());
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, text + size, check);
  } catch (const json::exception& e) {
    file_error(path, "not valid JSON: {}", e.what());
  }
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& j) {
  if (!j.is_object()) file_error(path, "__metadata__ must be an object, got {}", j.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string())
      file_error(path, "__metadata__ value '{}' must be a string, got {}", key, value.type_name());
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// JSON non-negative integers parse as number_unsigned; negatives, fractions and values beyond u64
// (which nlohmann turns into floats) do not.
uint64_t get_u64(const std::string& path, const std::string& name, const json& v, const std::string& field) {
  if (!v.is_number_unsigned())
    file_error(path, "tensor '{}': {} must be a non-negative integer, got {}", name, field, v.dump());
  return v.get<uint64_t>();
}

const json& field(const std::string& path, const std::string& name, const json& entry, const char* key,
                  json::value_t type) {
  const auto it = entry.find(key);
  if (it == entry.end()) file_error(path, "tensor '{}': missing field '{}'", name, key);
  if (it->type() != type)
    file_error(path, "tensor '{}': field '{}' must be {}, got {}", name, key, json(type).type_name(),
               it->type_name());
  return *it;
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry, uint64_t data_size) {
  if (!entry.is_object()) file_error(path, "tensor '{}': entry must be an object, got {}", name, entry.type_name());
  TensorInfo ti;
  ti.dtype = field(path, name, entry, "dtype", json::value_t::string).get<std::string>();
  const FileDType* ft = find_file_dtype(ti.dtype);
  if (!ft) file_error(path, "tensor '{}': unknown dtype '{}'", name, ti.dtype);
  ti.view_dtype = ft->view;

  // The product of the non-zero dims must fit in int64 so that strides never overflow, even when a
  // zero dim makes the tensor empty.
  constexpr uint64_t kMaxElements = uint64_t(std::numeric_limits<int64_t>::max());
  uint64_t nonzero_product = 1;
  bool empty = false;
  const json& shape = field(path, name, entry, "shape", json::value_t::array);
  for (size_t i = 0; i < shape.size(); ++i) {
    const uint64_t d = get_u64(path, name, shape[i], fmt::format("shape[{}]", i));
    if (d == 0) {
      empty = true;
    } else if (__builtin_mul_overflow(nonzero_product, d, &nonzero_product) || nonzero_product > kMaxElements) {
      file_error(path, "tensor '{}': shape {} has too many elements", name, shape.dump());
    }
    ti.shape.push_back(int64_t(d));
  }
  const uint64_t numel = empty ? 0 : nonzero_product;
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, ft->size, &nbytes))
    file_error(path, "tensor '{}': shape {} of {} is too large", name, shape.dump(), ti.dtype);

  const json& offsets = field(path, name, entry, "data_offsets", json::value_t::array);
  if (offsets.size() != 2) file_error(path, "tensor '{}': data_offsets must be [begin, end], got {}", name, offsets.dump());
  ti.begin = get_u64(path, name, offsets[0], "data_offsets[0]");
  ti.end = get_u64(path, name, offsets[1], "data_offsets[1]");
  if (ti.begin > ti.end) file_error(path, "tensor '{}': data_offsets [{}, {}] end before begin", name, ti.begin, ti.end);
  if (ti.end > data_size)
    file_error(path, "tensor '{}': data_offsets end {} is beyond the {}-byte data section (truncated file?)", name,
               ti.end, data_size);
  if (ti.end - ti.begin != nbytes)
    file_error(path, "tensor '{}': {} {} needs {} bytes but data_offsets [{}, {}] hold {}", name, ti.dtype,
               shape_str(ti.shape), nbytes, ti.begin, ti.end, ti.end - ti.begin);
  return ti;
}

void check_no_overlap(const std::string& path, const std::map<std::string, TensorInfo>& tensors) {
  std::vector<const std::pair<const std::string, TensorInfo>*> by_offset;
  for (const auto& entry : tensors)
    if (entry.second.begin != entry.second.end) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) { return a->second.begin < b->second.begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto& [prev_name, prev] = *by_offset[i - 1];
    const auto& [name, cur] = *by_offset[i];
    if (cur.begin < prev.end)
      file_error(path, "tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", prev_name, prev.begin, prev.end, name,
                 cur.begin, cur.end);
  }
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.storage_ = Storage::map_file(path);
  const uint64_t file_size = f.storage_->bytes();
  if (file_size < 8) file_error(path, "{} bytes is shorter than the 8-byte header length", file_size);
  const auto* bytes = static_cast<const unsigned char*>(f.storage_->data());
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | bytes[i];
  if (header_size > kMaxSafetensorsHeaderBytes)
    file_error(path, "header length {} exceeds the limit of {} bytes", header_size, kMaxSafetensorsHeaderBytes);
  if (header_size > file_size - 8)
    file_error(path, "header length {} exceeds the {} bytes that follow it (truncated file?)", header_size,
               file_size - 8);
  f.data_start_ = 8 + header_size;

  const json header = parse_json(path, reinterpret_cast<const char*>(bytes) + 8, header_size);
  if (!header.is_object()) file_error(path, "header must be a JSON object, got {}", header.type_name());
  const uint64_t data_size = file_size - f.data_start_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      f.metadata_ = parse_metadata(path, entry);
    } else {
      f.tensors_.emplace(name, parse_entry(path, name, entry, data_size));
    }
  }
  check_no_overlap(path, f.tensors_);
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& entry : tensors_) out.push_back(entry.first);
  return out;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) file_error(path_, "no tensor named '{}' ({} tensors in the file)", name, tensors_.size());
  return it->second;
}

const char* SafetensorsFile::data_section() const {
  return static_cast<const char*>(storage_->data()) + data_start_;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  if (!ti.view_dtype)
    file_error(path_, "tensor '{}' has dtype {}, which tcat does not compute in; load it with get_as()", name,
               ti.dtype);
  const DType dt = *ti.view_dtype;
  const size_t offset = size_t(data_start_ + ti.begin);
  const auto address = reinterpret_cast<uintptr_t>(storage_->data()) + offset;
  if (address % dtype_size(dt) == 0 || ti.begin == ti.end) return Tensor::from_storage(storage_, offset, ti.shape, dt);
  Tensor aligned = Tensor::empty(ti.shape, dt);
  std::memcpy(aligned.raw_data(), data_section() + ti.begin, size_t(ti.end - ti.begin));
  return aligned;
}

Tensor SafetensorsFile::get_as(const std::string& name, DType dtype) const {
  const TensorInfo& ti = info(name);
  if (ti.view_dtype) return get(name).to(dtype);
  const std::string what = fmt::format("safetensors file '{}': tensor '{}'", path_, name);
  return find_file_dtype(ti.dtype)->widen(data_section() + ti.begin, ti.shape, what).to(dtype);
}

void SafetensorsFile::release(const std::string& name) const {
  const TensorInfo& ti = info(name);
  if (ti.begin == ti.end) return;
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(storage_->data());
  // Whole pages: ones shared with a neighbouring tensor are read back from the file if it is used.
  const uintptr_t first = (base + data_start_ + ti.begin) / page * page;
  const uintptr_t last = std::min(base + storage_->bytes(), (base + data_start_ + ti.end + page - 1) / page * page);
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0)
    file_error(path_, "cannot release the pages of tensor '{}': {}", name, std::strerror(errno));
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    TCAT_CHECK(name != "__metadata__", "save_safetensors '{}': '__metadata__' is reserved, not a tensor name", path);
    TCAT_CHECK(seen.insert(name).second, "save_safetensors '{}': tensor name '{}' given twice", path, name);
    TCAT_CHECK(t.defined(), "save_safetensors '{}': tensor '{}' is undefined", path, name);
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", file_dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    fail("save_safetensors '{}': cannot encode the header (names and metadata must be UTF-8): {}", path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // 8 + size stays a multiple of 8, so data is aligned

  AtomicFile out(path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(length, 8);
  out.write(text.data(), text.size());
  for (size_t i : order) {
    const Tensor t = tensors[i].second.contiguous();
    out.write(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype()));
  }
  out.commit();
}

ShardedSafetensors ShardedSafetensors::open(const std::string& index_path) {
  ShardedSafetensors s;
  s.index_path_ = index_path;
  const auto index_file = Storage::map_file(index_path);
  if (index_file->bytes() > kMaxSafetensorsHeaderBytes)
    fail("safetensors index '{}': {} bytes exceeds the limit of {}", index_path, index_file->bytes(),
         kMaxSafetensorsHeaderBytes);
  const json index = parse_json(index_path, static_cast<const char*>(index_file->data()), index_file->bytes());
  TCAT_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
             "safetensors index '{}': expected an object with a \"weight_map\" object", index_path);

  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  std::map<std::string, size_t> shard_by_file;
  for (const auto& [name, file_json] : index["weight_map"].items()) {
    TCAT_CHECK(file_json.is_string(), "safetensors index '{}': weight_map['{}'] must be a file name, got {}",
               index_path, name, file_json.dump());
    const std::filesystem::path file(file_json.get<std::string>());
    const bool escapes = file.empty() || file.is_absolute() ||
                         std::any_of(file.begin(), file.end(), [](const auto& part) { return part == ".."; });
    TCAT_CHECK(!escapes, "safetensors index '{}': shard '{}' of tensor '{}' is not a file next to the index",
               index_path, file.string(), name);
    auto [it, added] = shard_by_file.emplace(file.string(), s.shards_.size());
    if (added) {
      try {
        s.shards_.push_back(SafetensorsFile::open((dir / file).string()));
      } catch (const Error& e) {
        fail("safetensors index '{}': shard of tensor '{}': {}", index_path, name, e.what());
      }
    }
    TCAT_CHECK(s.shards_[it->second].contains(name), "safetensors index '{}' maps tensor '{}' to '{}', which lacks it",
               index_path, name, s.shards_[it->second].path());
    s.shard_of_.emplace(name, it->second);
  }
  return s;
}

std::vector<std::string> ShardedSafetensors::names() const {
  std::vector<std::string> out;
  out.reserve(shard_of_.size());
  for (const auto& entry : shard_of_) out.push_back(entry.first);
  return out;
}

const SafetensorsFile& ShardedSafetensors::shard(const std::string& name) const {
  const auto it = shard_of_.find(name);
  TCAT_CHECK(it != shard_of_.end(), "safetensors index '{}' has no tensor named '{}'", index_path_, name);
  return shards_[it->second];
}

}  // namespace tcat::io
