// Translation decoding speed of a Transformer-base encoder-decoder with random weights, in the
// setting of the HF transformers / CTranslate2 measurements in ../shared/bench/peers
// (RESULTS-translation.md, bench_hf.py): opus-mt-en-de's shape (6+6 layers, d 512, 8 heads,
// d_ff 2048, swish, sinusoidal positions, tied 58101-token vocabulary), fp32, the output length
// forced (min = max = tgt-len tokens, no early stop), encoder and search included in the time.
// batch 1: 64 sentences one at a time; other batch sizes: 512 sentences.
// Prints one JSON line per (batch, beam): the median of `runs` timed passes after one warm-up batch.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "core/threading.h"
#include "generate/beam_search.h"
#include "generate/greedy.h"

using namespace tcat;

namespace {

struct Settings {
  int threads = 2, runs = 3, src_len = 15, tgt_len = 17, only_batch = 0, only_beam = 0;
  int64_t vocab = 58101;
};

// Decodes `batch` sentences of random source ids; returns the seconds taken.
double decode(const models::Transformer& model, const Tensor& src, int beam, int tgt_len) {
  const generate::SearchLimits limits{1, 2, tgt_len, tgt_len};
  const auto t0 = std::chrono::steady_clock::now();
  if (beam == 1) {
    const auto out = generate::greedy_decode(model, src, limits);
    TCAT_CHECK(out.front().size() == size_t(tgt_len), "greedy produced {} tokens, {} forced", out.front().size(),
               tgt_len);
  } else {
    generate::BeamSearchOptions opt;
    opt.beam_size = beam;
    opt.limits = limits;
    const auto out = generate::beam_search(model, src, opt);
    TCAT_CHECK(out.front().front().tokens.size() == size_t(tgt_len), "beam search produced {} tokens, {} forced",
               out.front().front().tokens.size(), tgt_len);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run(const models::Transformer& model, const Settings& s, int batch, int beam, Rng& rng) {
  const int sentences = batch == 1 ? 64 : 512;
  std::vector<Tensor> batches;
  for (int done = 0; done < sentences; done += batch) {
    const int rows = std::min(batch, sentences - done);
    std::vector<int64_t> ids(size_t(rows * s.src_len));
    for (auto& id : ids) id = 3 + int64_t(rng.below(uint64_t(model.config().vocab - 3)));
    batches.push_back(Tensor::from_ids(ids, {rows, s.src_len}));
  }
  decode(model, batches.front(), beam, s.tgt_len);  // warm-up: caches, allocator, oneDNN kernels
  std::vector<double> times;
  for (int r = 0; r < s.runs; ++r) {
    double total = 0;
    for (const Tensor& src : batches) total += decode(model, src, beam, s.tgt_len);
    times.push_back(total);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const int64_t target_tokens = int64_t(sentences) * s.tgt_len;
  const int64_t steps = int64_t(batches.size()) * s.tgt_len;
  nlohmann::json out{{"bench", "tcat_translate_decode"},
                     {"threads", s.threads},
                     {"batch", batch},
                     {"beam", beam},
                     {"vocab", model.config().vocab},
                     {"src_len", s.src_len},
                     {"tgt_len", s.tgt_len},
                     {"sentences", sentences},
                     {"target_tokens", target_tokens},
                     {"times", times},
                     {"median_s", median},
                     {"sent_per_s", sentences / median},
                     {"tok_per_s", double(target_tokens) / median},
                     {"ms_per_step", median / double(steps) * 1e3}};
  fmt::print("{}\n", out.dump());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> long long {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", argv[i]);
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--threads")) s.threads = int(value());
    else if (!std::strcmp(argv[i], "--runs")) s.runs = int(value());
    else if (!std::strcmp(argv[i], "--src-len")) s.src_len = int(value());
    else if (!std::strcmp(argv[i], "--tgt-len")) s.tgt_len = int(value());
    else if (!std::strcmp(argv[i], "--vocab")) s.vocab = value();
    else if (!std::strcmp(argv[i], "--batch")) s.only_batch = int(value());
    else if (!std::strcmp(argv[i], "--beam")) s.only_beam = int(value());
    else {
      fmt::print(stderr,
                 "usage: {} [--threads N] [--runs N] [--src-len N] [--tgt-len N] [--vocab N] [--batch N] "
                 "[--beam K]\n  default: batch 1 and 32, beam 1 and 4 (batch 1: 64 sentences, else 512)\n",
                 argv[0]);
      return 2;
    }
  }
  if (s.runs < 1 || s.src_len < 1 || s.tgt_len < 1 || s.vocab < 4 || s.only_batch < 0 || s.only_beam < 0) {
    fmt::print(stderr, "runs, lengths, batch and beam must be positive and the vocabulary at least 4\n");
    return 2;
  }
  set_num_threads(s.threads);
  models::ArchConfig cfg = models::preset("transformer-base", s.vocab);
  cfg.activation = nn::Activation::SiLU;  // Marian's swish
  Rng rng(0);
  const models::Transformer model(cfg, rng);
  const std::vector<int> batches = s.only_batch ? std::vector<int>{s.only_batch} : std::vector<int>{1, 32};
  const std::vector<int> beams = s.only_beam ? std::vector<int>{s.only_beam} : std::vector<int>{1, 4};
  for (int batch : batches)
    for (int beam : beams) run(model, s, batch, beam, rng);
  return 0;
}
