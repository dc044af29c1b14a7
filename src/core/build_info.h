// What this binary is: version, revision, compiler, library versions.
#pragma once
#include <string>

namespace tcat {

struct BuildInfo {
  std::string version, git_revision, compiler, build_type, onednn_version;
};
const BuildInfo& build_info();

}  // namespace tcat
