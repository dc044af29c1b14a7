#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace tcat::io {

AtomicFile::AtomicFile(const std::string& path) : path_(path), tmp_path_(fmt::format("{}.tmp.{}", path, ::getpid())) {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TCAT_CHECK(fd_ >= 0, "cannot create '{}': {}", tmp_path_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    TCAT_CHECK(w > 0, "cannot write '{}': {}", tmp_path_, std::strerror(errno));
    p += w;
    n -= size_t(w);
  }
}

void AtomicFile::commit() {
  TCAT_CHECK(::fsync(fd_) == 0, "cannot fsync '{}': {}", tmp_path_, std::strerror(errno));
  const int rc = ::close(fd_);
  fd_ = -1;
  TCAT_CHECK(rc == 0, "cannot close '{}': {}", tmp_path_, std::strerror(errno));
  TCAT_CHECK(::rename(tmp_path_.c_str(), path_.c_str()) == 0, "cannot rename '{}' to '{}': {}", tmp_path_, path_,
             std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable; some filesystems refuse fsync on directories, which is harmless.
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents.data(), contents.size());
  f.commit();
}

}  // namespace tcat::io
