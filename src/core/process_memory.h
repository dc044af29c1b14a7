// Resident memory of this process, for memory bounds in tests and benchmarks (Linux /proc).
#pragma once
#include <cstdint>
#include <string>

namespace tcat {

// A field of /proc/self/status in bytes, e.g. "VmRSS" (resident now) or "VmHWM" (peak resident).
int64_t process_status_bytes(const std::string& field);

}  // namespace tcat
