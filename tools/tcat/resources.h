// Where the files tcat ships with (data, the bundled model) are found at run time.
#pragma once
#include <string>

namespace tcat::cli {

// The first existing of: $TCAT_HOME/<rel>, <binary's dir>/<rel>, <binary's dir>/../<rel>, ./<rel>.
// Error listing the places looked at when none exists.
std::string bundled_path(const std::string& relative);
inline std::string bundled_data_dir(const std::string& name) { return bundled_path("data/" + name); }

}  // namespace tcat::cli
