#include "core/build_info.h"

#include <fmt/core.h>

#include <oneapi/dnnl/dnnl.h>

namespace tcat {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    const dnnl_version_t* v = dnnl_version();
    return BuildInfo{TCAT_VERSION, TCAT_GIT_REV, TCAT_COMPILER, TCAT_BUILD_TYPE,
                     fmt::format("{}.{}.{} (cpu runtime: OpenMP)", v->major, v->minor, v->patch)};
  }();
  return info;
}

}  // namespace tcat
