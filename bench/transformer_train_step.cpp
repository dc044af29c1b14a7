// Training-step time of a post-norm encoder-decoder Transformer of any size; the workload of the
// PyTorch peer bench/torch_seq2seq_train.py (same flags, same defaults). Defaults: Transformer base
// (Vaswani et al.): 6+6 layers, d 512, 8 heads, d_ff 2048, ReLU, vocab 32000 shared and tied,
// dropout 0.1; label smoothing 0.1, Adam (0.9, 0.98, 1e-9); 32 source and 32 target sequences of 32
// random tokens (no padding), the same batch every step. One step = forward + loss + backward +
// optimizer. Prints one JSON line.
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

namespace {

struct Settings {
  int threads = 1, steps = 5, warmup = 2, batch = 32, src_len = 32, tgt_len = 32;
  int d_model = 512, heads = 8, d_ff = 2048, layers = 6, vocab = 32000;
  std::string activation = "relu";
  double dropout = 0.1, label_smoothing = 0.1;
  bool bf16 = false;
};

[[noreturn]] void usage(const char* argv0) {
  fmt::print(stderr,
             "usage: {} [--threads N] [--d-model N --heads N --d-ff N --layers N --vocab N --activation relu|gelu "
             "--dropout P --label-smoothing E] [--batch N --src-len N --tgt-len N] [--steps N --warmup N] [--bf16]\n"
             "  defaults: Transformer base, batch 32 x 32 tokens, 5 timed steps after 2 warm-up steps\n",
             argv0);
  std::exit(2);
}

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    const char* a = argv[i];
    if (!std::strcmp(a, "--threads")) s.threads = std::atoi(value());
    else if (!std::strcmp(a, "--steps")) s.steps = std::atoi(value());
    else if (!std::strcmp(a, "--warmup")) s.warmup = std::atoi(value());
    else if (!std::strcmp(a, "--batch")) s.batch = std::atoi(value());
    else if (!std::strcmp(a, "--src-len")) s.src_len = std::atoi(value());
    else if (!std::strcmp(a, "--tgt-len")) s.tgt_len = std::atoi(value());
    else if (!std::strcmp(a, "--d-model")) s.d_model = std::atoi(value());
    else if (!std::strcmp(a, "--heads")) s.heads = std::atoi(value());
    else if (!std::strcmp(a, "--d-ff")) s.d_ff = std::atoi(value());
    else if (!std::strcmp(a, "--layers")) s.layers = std::atoi(value());
    else if (!std::strcmp(a, "--vocab")) s.vocab = std::atoi(value());
    else if (!std::strcmp(a, "--activation")) s.activation = value();
    else if (!std::strcmp(a, "--dropout")) s.dropout = std::atof(value());
    else if (!std::strcmp(a, "--label-smoothing")) s.label_smoothing = std::atof(value());
    else if (!std::strcmp(a, "--bf16")) s.bf16 = true;
    else usage(argv[0]);
  }
  if (s.threads < 1 || s.steps < 1 || s.warmup < 0 || s.batch < 1 || s.src_len < 1 || s.tgt_len < 1 ||
      s.layers < 1 || s.vocab < 4 || (s.activation != "relu" && s.activation != "gelu")) {
    fmt::print(stderr,
               "threads, steps, sizes and lengths must be positive, vocab at least 4, activation relu or gelu\n");
    std::exit(2);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  set_num_threads(s.threads);
  models::ArchConfig cfg = models::preset("transformer-base", s.vocab);
  cfg.d_model = s.d_model;
  cfg.heads = s.heads;
  cfg.d_ff = s.d_ff;
  cfg.enc_layers = cfg.dec_layers = s.layers;
  cfg.activation = s.activation == "relu" ? nn::Activation::ReLU : nn::Activation::GELU;
  cfg.dropout = float(s.dropout);
  cfg.max_positions = std::max<int64_t>(cfg.max_positions, std::max(s.src_len, s.tgt_len));
  try {
    cfg.validate();
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
  Rng rng(0);
  models::Transformer model(cfg, rng);
  train::Seq2SeqTrainOptions opt;
  opt.label_smoothing = float(s.label_smoothing);
  opt.bf16 = s.bf16;
  train::Seq2SeqTrainer trainer(model, std::make_unique<train::NoamSchedule>(cfg.d_model, 4000), opt);

  auto random_ids = [&](int64_t rows, int64_t cols) {
    std::vector<int64_t> v(size_t(rows * cols));
    for (auto& x : v) x = 3 + int64_t(rng.below(uint64_t(cfg.vocab - 3)));
    return Tensor::from_ids(v, {rows, cols});
  };
  const data::Seq2SeqBatch b{random_ids(s.batch, s.src_len), random_ids(s.batch, s.tgt_len),
                             random_ids(s.batch, s.tgt_len)};

  std::vector<double> times;
  for (int step = 0; step < s.warmup + s.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(b);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step >= s.warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  nlohmann::json out{{"bench", "tcat_seq2seq_train"},
                     {"threads", s.threads},
                     {"cfg",
                      {{"d_model", s.d_model},
                       {"heads", s.heads},
                       {"d_ff", s.d_ff},
                       {"layers", s.layers},
                       {"vocab", s.vocab},
                       {"activation", s.activation},
                       {"dropout", s.dropout},
                       {"label_smoothing", s.label_smoothing},
                       {"batch", s.batch},
                       {"src_len", s.src_len},
                       {"tgt_len", s.tgt_len},
                       {"steps", s.steps},
                       {"warmup", s.warmup},
                       {"bf16", s.bf16}}},
                     {"bf16_native", kernels::bf16_gemm_native()},
                     {"params", model.parameter_count()},
                     {"step_ms_median", median * 1e3},
                     {"step_ms_min", times.front() * 1e3},
                     {"tgt_tok_s", s.batch * s.tgt_len / median}};
  fmt::print("{}\n", out.dump());
  return 0;
}
