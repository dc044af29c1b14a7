// Crash-safe file writing: data goes to a temporary file beside the target, which is fsynced and
// renamed over the target on commit(), so readers see the old file or the new one, never a mix.
#pragma once
#include <string>

namespace tcat::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless committed

  void write(const void* data, size_t n);
  void commit();

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes a whole file atomically.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace tcat::io
