// One threading runtime for the whole process: OpenMP, the one oneDNN uses too.
#pragma once

namespace tcat {

void set_num_threads(int n);  // n <= 0: leave the OpenMP default
int num_threads();

}  // namespace tcat
