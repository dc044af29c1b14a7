#include "core/process_memory.h"

#include <fstream>
#include <limits>

#include "core/error.h"

namespace tcat {

int64_t process_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  int64_t kib = 0;
  while (status >> key) {
    if (key == field + ":" && status >> kib) return kib * 1024;
    status.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  fail("no {} in /proc/self/status", field);
}

}  // namespace tcat
