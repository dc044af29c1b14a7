// Few-row products out[M, N] = x[M, K] * w[N, K]^T: oneDNN sgemm against kernels::skinny_gemm
// (f32 and bf16 weights) for M = 1..kSkinnyMaxRows on GPT-2-small's and Transformer-base's
// weight shapes. This is how kernels::linear's row limit for the skinny path was chosen.
// Prints one JSON line per (shape, M): median microseconds and weight GB/s of each.
// usage: skinny_rows [--threads N] [--reps N]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/rng.h"
#include "core/threading.h"
#include "kernels/gemm.h"

using namespace tcat;

namespace {

double median_seconds(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  if (argc % 2 == 0 || threads < 1 || reps < 1) {
    fmt::print(stderr, "usage: {} [--threads N] [--reps N]\n", argv[0]);
    return 2;
  }
  set_num_threads(threads);
  Rng rng(0);
  // (N, K): GPT-2 qkv, fc, fc-proj, lm_head; Transformer-base d x d, output projection.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {2304, 768}, {3072, 768}, {768, 3072}, {50257, 768}, {512, 512}, {58101, 512}};
  for (const auto& [N, K] : shapes) {
    std::vector<float> w(size_t(N * K)), x(size_t(kernels::kSkinnyMaxRows * K)),
        out(size_t(kernels::kSkinnyMaxRows * N));
    for (float& v : w) v = rng.uniform() - 0.5f;
    for (float& v : x) v = rng.uniform() - 0.5f;
    std::vector<bf16> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) wb[i] = float_to_bf16(w[i]);
    for (int64_t M = 1; M <= kernels::kSkinnyMaxRows; ++M) {
      const double dnnl = median_seconds(
          [&] { kernels::sgemm(false, true, M, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, out.data(), N); }, reps);
      const double skinny = median_seconds(
          [&] { kernels::skinny_gemm(M, N, K, x.data(), K, w.data(), K, out.data(), N, false); }, reps);
      const double skinny_bf16 = median_seconds(
          [&] { kernels::skinny_gemm(M, N, K, x.data(), K, wb.data(), K, out.data(), N, false); }, reps);
      const double bytes = double(N * K) * 4;
      fmt::print("{}\n", nlohmann::json{{"N", N},
                                        {"K", K},
                                        {"M", M},
                                        {"threads", threads},
                                        {"sgemm_us", dnnl * 1e6},
                                        {"skinny_us", skinny * 1e6},
                                        {"skinny_bf16_us", skinny_bf16 * 1e6},
                                        {"sgemm_GBps", bytes / dnnl / 1e9},
                                        {"skinny_GBps", bytes / skinny / 1e9},
                                        {"skinny_over_sgemm", dnnl / skinny}}
                             .dump());
      std::fflush(stdout);
    }
  }
  return 0;
}
