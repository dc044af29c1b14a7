// A flat block of bytes that tensors view: owned (from the caching allocator) or a read-only
// memory-mapped file region.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace tcat {

class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t bytes);
  // Maps a whole file read-only; tensors that view it keep the mapping alive.
  static std::shared_ptr<Storage> map_file(const std::string& path);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool mapped() const { return mapped_; }

 private:
  Storage(void* data, size_t bytes, bool mapped) : data_(data), bytes_(bytes), mapped_(mapped) {}
  void* data_;
  size_t bytes_;
  bool mapped_;
};

}  // namespace tcat
