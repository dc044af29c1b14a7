// CPU features detected at run time; kernels dispatch on these, never on build flags.
#pragma once
#include <string>

namespace tcat {

struct CpuFeatures {
  std::string model_name;
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512_bf16 = false,
       avx512_vnni = false, amx_bf16 = false, amx_tile = false;
  std::string summary() const;  // "avx2 fma avx512f ..."
};

const CpuFeatures& cpu_features();

}  // namespace tcat
