// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor (dtype, shape, byte range), then the raw little-endian row-major data.
//
// Reading maps the file and returns zero-copy views for the dtypes tcat computes in. Files are
// untrusted: every inconsistency in the header is reported as a tcat::Error naming the file, the
// tensor and what is wrong, before any tensor data is touched.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tcat::io {

// Headers larger than this are rejected (the reference implementation uses the same limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

struct TensorInfo {
  std::string dtype;               // as written in the file: "F32", "BF16", "F64", "BOOL", ...
  Shape shape;
  uint64_t begin = 0, end = 0;     // byte range [begin, end) within the data section
  std::optional<DType> view_dtype; // what get() returns without conversion; empty: needs get_as()
};

class SafetensorsFile {
 public:
  // Maps the file and validates the whole header. Holes between tensors are allowed; overlaps are not.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A read-only view of the mapped file (writing into it faults; clone() for a writable copy).
  // F32/BF16/F16/I64/I32/I8/U8 map directly, BOOL is viewed as U8. Data whose offset in the file is
  // not a multiple of the element size is copied to aligned memory instead. Other dtypes (F64, I16,
  // U16, U32, U64, F8_*) throw and point to get_as().
  Tensor get(const std::string& name) const;
  // The tensor converted to `dtype`: any file dtype, via the nearest tcat dtype (F64 and F8 through
  // F32, I16/U16 through I32, U32/U64 through I64). A view when the file already holds `dtype`.
  Tensor get_as(const std::string& name, DType dtype) const;
  // Drops the process's resident pages of the tensor's bytes, once a copy of them has been made,
  // so that they no longer count towards its memory. Views of the file stay valid: their pages are
  // read back from the file when next touched (the mapping is private and never written).
  void release(const std::string& name) const;

 private:
  const char* data_section() const;

  std::string path_;
  std::shared_ptr<Storage> storage_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any strides; stored contiguous) atomically: to `path`.tmp.<pid>, fsync, rename.
// Tensors are laid out by decreasing element size and otherwise in the given order, with no gaps, so
// every tensor is aligned to its element size; the header is padded with spaces to a multiple of 8.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A checkpoint split across files by a Hugging Face index (model.safetensors.index.json:
// {"weight_map": {tensor name: shard file name relative to the index}}). Each shard is opened once.
class ShardedSafetensors {
 public:
  static ShardedSafetensors open(const std::string& index_path);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return shard_of_.count(name) != 0; }
  const SafetensorsFile& shard(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const { return shard(name).info(name); }
  Tensor get(const std::string& name) const { return shard(name).get(name); }
  Tensor get_as(const std::string& name, DType dtype) const { return shard(name).get_as(name, dtype); }

 private:
  std::string index_path_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, size_t> shard_of_;  // tensor name -> index into shards_
};

}  // namespace tcat::io
