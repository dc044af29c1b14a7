#include "resources.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace fs = std::filesystem;

namespace tcat::cli {

std::string bundled_path(const std::string& relative) {
  std::vector<fs::path> roots;
  if (const char* home = std::getenv("TCAT_HOME")) roots.emplace_back(home);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    roots.push_back(exe.parent_path());
    roots.push_back(exe.parent_path().parent_path());
  }
  roots.push_back(fs::current_path());
  std::vector<std::string> tried;
  for (const fs::path& root : roots) {
    const fs::path p = root / relative;
    if (fs::exists(p)) return p.string();
    tried.push_back(p.string());
  }
  fail("cannot find '{}' (looked in: {}); set TCAT_HOME to the tcat checkout", relative, fmt::join(tried, ", "));
}

}  // namespace tcat::cli
