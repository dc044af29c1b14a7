#include "core/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/allocator.h"
#include "core/error.h"

namespace tcat {

std::shared_ptr<Storage> Storage::allocate(size_t bytes) {
  return std::shared_ptr<Storage>(new Storage(cached_alloc(bytes), bytes, false));
}

std::shared_ptr<Storage> Storage::map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TCAT_CHECK(fd >= 0, "cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("cannot stat '{}': {}", path, std::strerror(e));
  }
  const size_t size = size_t(st.st_size);
  void* p = nullptr;
  if (size > 0) {
    p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("cannot mmap '{}' ({} bytes): {}", path, size, std::strerror(e));
    }
  }
  ::close(fd);
  return std::shared_ptr<Storage>(new Storage(p, size, true));
}

Storage::~Storage() {
  if (mapped_) {
    if (data_) ::munmap(data_, bytes_);
  } else {
    cached_free(data_, bytes_);
  }
}

}  // namespace tcat
