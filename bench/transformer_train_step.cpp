// Training-step time of Transformer base (Vaswani et al.): 6+6 layers, d 512, 8 heads, d_ff 2048,
// vocab 32000 shared and tied, dropout 0.1, label smoothing 0.1, Adam (0.9, 0.98, 1e-9); batch of
// 32 source and 32 target sequences of 32 tokens: the workload of the PyTorch peer
// torch_transformer_train.py. Prints one JSON line.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "core/threading.h"
#include "kernels/gemm.h"
#include "train/seq2seq_trainer.h"

using namespace tcat;

int main(int argc, char** argv) {
  int threads = 1, steps = 5, warmup = 2, batch = 32, src_len = 32, tgt_len = 32;
  bool bf16 = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](int& v) {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", argv[i]);
        std::exit(2);
      }
      v = std::atoi(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--threads")) next(threads);
    else if (!std::strcmp(argv[i], "--steps")) next(steps);
    else if (!std::strcmp(argv[i], "--warmup")) next(warmup);
    else if (!std::strcmp(argv[i], "--batch")) next(batch);
    else if (!std::strcmp(argv[i], "--src-len")) next(src_len);
    else if (!std::strcmp(argv[i], "--tgt-len")) next(tgt_len);
    else if (!std::strcmp(argv[i], "--bf16")) bf16 = true;
    else {
      fmt::print(stderr,
                 "usage: {} [--threads N] [--steps N] [--warmup N] [--batch N] [--src-len N] [--tgt-len N] [--bf16]\n",
                 argv[0]);
      return 2;
    }
  }
  set_num_threads(threads);
  models::ArchConfig cfg = models::preset("transformer-base", 32000);
  Rng rng(0);
  models::Transformer model(cfg, rng);
  train::Seq2SeqTrainOptions opt;
  opt.label_smoothing = 0.1f;
  opt.bf16 = bf16;
  train::Seq2SeqTrainer trainer(model, std::make_unique<train::NoamSchedule>(cfg.d_model, 4000), opt);

  auto random_ids = [&](int64_t rows, int64_t cols) {
    std::vector<int64_t> v(size_t(rows * cols));
    for (auto& x : v) x = 3 + int64_t(rng.below(uint64_t(cfg.vocab - 3)));
    return Tensor::from_ids(v, {rows, cols});
  };
  data::Seq2SeqBatch b{random_ids(batch, src_len), random_ids(batch, tgt_len), random_ids(batch, tgt_len)};

  std::vector<double> times;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(b);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  nlohmann::json out{{"bench", "tcat_transformer_base_train"},
                     {"threads", threads},
                     {"bf16", bf16},
                     {"bf16_native", kernels::bf16_gemm_native()},
                     {"params", model.parameter_count()},
                     {"step_ms_median", median * 1e3},
                     {"step_ms_min", times.front() * 1e3},
                     {"tgt_tok_s", batch * tgt_len / median}};
  fmt::print("{}\n", out.dump());
  return 0;
}
