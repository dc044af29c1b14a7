// Few-row products out[M, N] = x[M, K] * w[N, K]^T: oneDNN sgemm against kernels::skinny_gemm
// (f32 and bf16 weights) for M = 1..kSkinnyMaxRows on GPT-2-small's and Transformer-base's
// weight shapes. This is how kernels::linear's row limit for the skinny path was chosen.
// Prints one JSON line per (shape, M): median microseconds and weight GB/s of each.
// --step gpt2|marian instead times one batch-1 decoding step's worth of products (M = 1 against
// every matrix of the decoder and the output projection: GPT-2 small ~495 MB in f32, the
// opus-mt-en-de decoder ~207 MB, far beyond the caches) for f32 and bf16 weights: the rate the
// skinny kernel streams weights from memory.
// usage: skinny_rows [--threads N] [--reps N] [--step gpt2|marian]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"
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
    t.push_back(bench::seconds_since(t0));
  }
  return bench::median(t);
}

using Shapes = std::vector<std::pair<int64_t, int64_t>>;  // (N, K) per product

// The products of one batch-1 decoding step, in order: GPT-2 small (fused qkv, attention output,
// MLP; tied output projection) or the opus-mt-en-de decoder (self-attention q, k, v, o;
// cross-attention q, o, whose k and v are computed once per sentence; FFN; output projection).
Shapes decoding_step_shapes(const std::string& model) {
  Shapes shapes;
  if (model == "gpt2") {
    for (int layer = 0; layer < 12; ++layer)
      for (auto shape : {std::pair<int64_t, int64_t>{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}})
        shapes.push_back(shape);
    shapes.push_back({50257, 768});
  } else {
    for (int layer = 0; layer < 6; ++layer) {
      for (int i = 0; i < 6; ++i) shapes.push_back({512, 512});
      shapes.push_back({2048, 512});
      shapes.push_back({512, 2048});
    }
    shapes.push_back({58101, 512});
  }
  return shapes;
}

// Median seconds and weight bytes of M = 1 products against every matrix of one decoding step.
template <typename W>
std::pair<double, double> step_seconds_and_bytes(const Shapes& shapes, int reps, Rng& rng) {
  std::vector<std::vector<W>> weights;
  double bytes = 0;
  for (const auto& [N, K] : shapes) {
    std::vector<W>& w = weights.emplace_back(size_t(N * K));
    for (W& v : w) {
      const float f = rng.uniform() - 0.5f;
      if constexpr (std::is_same_v<W, bf16>) v = float_to_bf16(f);
      else v = f;
    }
    bytes += double(N * K) * sizeof(W);
  }
  int64_t max_n = 0, max_k = 0;
  for (const auto& [N, K] : shapes) max_n = std::max(max_n, N), max_k = std::max(max_k, K);
  std::vector<float> x(size_t(max_k), 0.5f), out(static_cast<size_t>(max_n));
  const double seconds = median_seconds(
      [&] {
        for (size_t i = 0; i < shapes.size(); ++i) {
          const auto [N, K] = shapes[i];
          kernels::skinny_gemm(1, N, K, x.data(), K, weights[i].data(), K, out.data(), N, false);
        }
      },
      reps);
  return {seconds, bytes};
}

void time_step(const std::string& model, int threads, int reps) {
  Rng rng(0);
  const Shapes shapes = decoding_step_shapes(model);
  const auto [f32_s, f32_bytes] = step_seconds_and_bytes<float>(shapes, reps, rng);
  const auto [bf16_s, bf16_bytes] = step_seconds_and_bytes<bf16>(shapes, reps, rng);
  bench::print_json_line(nlohmann::json{{"model", model},
                                        {"threads", threads},
                                        {"f32_step_ms", f32_s * 1e3},
                                        {"f32_GBps", f32_bytes / f32_s / 1e9},
                                        {"bf16_step_ms", bf16_s * 1e3},
                                        {"bf16_GBps", bf16_bytes / bf16_s / 1e9},
                                        {"bf16_speedup", f32_s / bf16_s}});
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 20;
  std::string step;  // empty: per-shape table
  bool usage = false;
  for (int i = 1; i < argc && !usage; ++i) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(bench::option_value(argc, argv, i));
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(bench::option_value(argc, argv, i));
    else if (!std::strcmp(argv[i], "--step")) step = bench::option_value(argc, argv, i);
    else usage = true;
  }
  if (usage || threads < 1 || reps < 1 || !(step.empty() || step == "gpt2" || step == "marian")) {
    fmt::print(stderr, "usage: {} [--threads N] [--reps N] [--step gpt2|marian]\n", argv[0]);
    return 2;
  }
  set_num_threads(threads);
  if (!step.empty()) {
    time_step(step, threads, reps);
    return 0;
  }
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
      bench::print_json_line(nlohmann::json{{"N", N},
                                            {"K", K},
                                            {"M", M},
                                            {"threads", threads},
                                            {"sgemm_us", dnnl * 1e6},
                                            {"skinny_us", skinny * 1e6},
                                            {"skinny_bf16_us", skinny_bf16 * 1e6},
                                            {"sgemm_GBps", bytes / dnnl / 1e9},
                                            {"skinny_GBps", bytes / skinny / 1e9},
                                            {"skinny_bf16_GBps", bytes / 2 / skinny_bf16 / 1e9},
                                            {"skinny_over_sgemm", dnnl / skinny}});
    }
  }
  return 0;
}
