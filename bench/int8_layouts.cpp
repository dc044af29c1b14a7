// The two int8 weight layouts of kernels/int8.h on Transformer-base's products: Rows (oneDNN's
// u8 x s8 GEMM, tcat's few-row kernel up to 8 rows) against Panels (tcat's kernel on pre-packed
// weights), timed alternately in one run. Prints one JSON line per (shape, rows): median
// microseconds of each, GOP/s and panels_speedup (rows time / panels time).
// usage: int8_layouts [--threads N] [--reps N]
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.h"
#include "core/rng.h"
#include "core/threading.h"
#include "kernels/int8.h"

using namespace tcat;

int main(int argc, char** argv) {
  int threads = 0, reps = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      threads = std::atoi(bench::option_value(argc, argv, i));
    } else if (a == "--reps") {
      reps = std::atoi(bench::option_value(argc, argv, i));
    } else {
      fmt::print(stderr, "usage: int8_layouts [--threads N] [--reps N]\n");
      return 2;
    }
  }
  if (reps < 1 || threads < 0) {
    fmt::print(stderr, "--reps must be >= 1 and --threads >= 0\n");
    return 2;
  }
  if (threads > 0) set_num_threads(threads);
  Rng rng(1);
  // (N, K): attention projections, FFN up, FFN down, the output projection onto opus-mt-en-de's
  // 58101 tokens (29 MB in int8).
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{512, 512}, {2048, 512}, {512, 2048}, {58101, 512}};
  for (const auto& [N, K] : shapes) {
    std::vector<float> w(size_t(N * K));
    for (float& v : w) v = rng.normal();
    const Tensor weight = Tensor::from_vector(w, {N, K});
    const Tensor rows = kernels::quantize_weight_int8(weight, kernels::Int8Layout::Rows);
    const Tensor panels = kernels::quantize_weight_int8(weight, kernels::Int8Layout::Panels);
    for (int64_t M : {1, 4, 8, 32, 128}) {
      std::vector<float> x(size_t(M * K)), out(size_t(M * N));
      for (float& v : x) v = rng.normal();
      const auto run = [&](const Tensor& q) {
        const auto t0 = std::chrono::steady_clock::now();
        kernels::gemm_int8_weights(M, N, K, x.data(), K, q, nullptr, 0.0f, out.data(), N);
        return bench::seconds_since(t0);
      };
      run(rows), run(panels);
      std::vector<double> t_rows, t_panels;
      for (int r = 0; r < reps; ++r) {
        t_rows.push_back(run(rows));
        t_panels.push_back(run(panels));
      }
      const double a = bench::median(t_rows), b = bench::median(t_panels), ops = 2.0 * double(M * N * K);
      bench::print_json_line({{"N", N},
                              {"K", K},
                              {"M", M},
                              {"rows_us", a * 1e6},
                              {"panels_us", b * 1e6},
                              {"rows_gops", ops / a * 1e-9},
                              {"panels_gops", ops / b * 1e-9},
                              {"panels_speedup", a / b}});
    }
  }
  return 0;
}
