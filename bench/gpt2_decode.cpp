// GPT-2-small inference speed with random weights, measured the way ../shared/bench/peers/torch_gpt2.py
// measures its PyTorch model: prefill of one P-token prompt (logits for all positions, and for the
// last position only), then greedy decoding of G new tokens with the KV cache after that prefill.
// The model comes from a GPT-2 config.json (12 layers, d 768, 12 heads, vocab 50257, 1024 positions,
// tied output projection) through the Hugging Face loader's config mapping.
// --weights bf16 stores every matrix as bf16 (nn::store_weights); products stay fp32.
// --weights f32,bf16 builds both (the same random weights) and times their decoding runs in
// alternation, so a shared machine's drift hits both alike; --membw CMD runs the bandwidth probe
// (membw.c) before each of those rounds.
// Prints one JSON line per weight type: medians (prefill over `reps` calls, decode over
// max(1, reps / 2) runs, after warm-up) and the weight bytes one decoding step reads (every
// parameter except the position table, of which one row is read). With --membw, each line also has
// the probe's median and the median over rounds of decode speed / (probe GB/s / step bytes), and
// with both types a last line has the median over rounds of bf16 speed / f32 speed.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "common.h"
#include "core/threading.h"
#include "io/hf_config.h"
#include "models/transformer.h"
#include "nn/layers.h"

using namespace tcat;

namespace {

struct Settings {
  int threads = 1, reps = 5;
  int64_t layers = 12, d = 768, heads = 12, vocab = 50257, ctx = 1024, prompt = 128, gen = 128;
  std::string weights = "f32";  // f32, bf16 or f32,bf16
  std::string membw;            // bandwidth probe command; empty: none
};

// One weight type under test: its model, the decode time of each round and the JSON line.
struct Variant {
  std::string weights;
  std::unique_ptr<models::Transformer> model;
  std::vector<double> decode_runs;
  nlohmann::json line;
};

using bench::median;
using bench::seconds_since;

// Median seconds of `reps` calls after two warm-up calls (as torch_gpt2.py's timeit).
double time_median(const std::function<void()>& fn, int reps) {
  for (int i = 0; i < 2; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(seconds_since(t0));
  }
  return median(times);
}

int64_t argmax(const float* v, int64_t n) { return int64_t(std::max_element(v, v + n) - v); }

// Seconds for `gen` greedy steps after the prompt's prefill (which is not counted).
double decode_seconds(const models::Transformer& model, const Tensor& prompt, int64_t gen) {
  const int64_t vocab = model.config().vocab;
  models::DecoderState state = model.start_decoding(1, prompt.dim(1) + gen + 1);
  Tensor logits = model.decode_step(prompt, state);
  int64_t next = argmax(logits.data<float>(), vocab);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < gen; ++i) {
    logits = model.decode_step(Tensor::from_ids({next}, {1, 1}), state);
    next = argmax(logits.data<float>(), vocab);
  }
  return seconds_since(t0);
}

int64_t step_weight_bytes(const models::Transformer& model) {
  std::unordered_set<const ag::VarImpl*> seen;  // a tied table is listed under two names
  int64_t bytes = 0;
  for (const auto& [name, param] : model.named_parameters()) {
    if (name.find("pos_embed") != std::string::npos || !seen.insert(param.impl().get()).second) continue;
    bytes += param.value().numel() * int64_t(dtype_size(param.value().dtype()));
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    auto value = [&] { return bench::option_value(argc, argv, i); };
    const char* a = argv[i];
    if (!std::strcmp(a, "--threads")) s.threads = std::atoi(value());
    else if (!std::strcmp(a, "--reps")) s.reps = std::atoi(value());
    else if (!std::strcmp(a, "--layers")) s.layers = std::atoll(value());
    else if (!std::strcmp(a, "--d")) s.d = std::atoll(value());
    else if (!std::strcmp(a, "--heads")) s.heads = std::atoll(value());
    else if (!std::strcmp(a, "--vocab")) s.vocab = std::atoll(value());
    else if (!std::strcmp(a, "--ctx")) s.ctx = std::atoll(value());
    else if (!std::strcmp(a, "--prompt")) s.prompt = std::atoll(value());
    else if (!std::strcmp(a, "--gen")) s.gen = std::atoll(value());
    else if (!std::strcmp(a, "--weights")) s.weights = value();
    else if (!std::strcmp(a, "--membw")) s.membw = value();
    else {
      fmt::print(stderr,
                 "usage: {} [--threads N] [--reps N] [--weights f32|bf16|f32,bf16] [--membw CMD] [--prompt P] "
                 "[--gen G] [--layers L] [--d D] [--heads H] [--vocab V] [--ctx C]\n",
                 argv[0]);
      return 2;
    }
  }
  if (s.threads < 1 || s.reps < 1 || s.prompt < 1 || s.gen < 1 || s.prompt + s.gen + 1 > s.ctx ||
      (s.weights != "f32" && s.weights != "bf16" && s.weights != "f32,bf16")) {
    fmt::print(stderr,
               "threads, reps, prompt and gen must be positive, prompt + gen + 1 <= ctx, weights f32, bf16 or "
               "f32,bf16\n");
    return 2;
  }
  set_num_threads(s.threads);
  const nlohmann::json config{{"model_type", "gpt2"}, {"n_layer", s.layers},  {"n_embd", s.d},
                              {"n_head", s.heads},    {"vocab_size", s.vocab}, {"n_positions", s.ctx}};
  const io::HfModelConfig hf = io::parse_hf_config(config, "gpt2_decode");
  std::vector<Variant> variants;
  for (const char* weights : {"f32", "bf16"}) {
    if (s.weights.find(weights) == std::string::npos) continue;
    Rng init(0);  // the same weights for both types
    Variant& v = variants.emplace_back(Variant{weights, std::make_unique<models::Transformer>(hf.arch, init), {}, {}});
    nn::store_weights(*v.model, nn::parse_weight_storage(v.weights));
  }

  Rng rng(1);
  std::vector<int64_t> ids(size_t(s.prompt));
  for (auto& id : ids) id = int64_t(rng.uniform() * double(s.vocab)) % s.vocab;
  const Tensor prompt = Tensor::from_ids(ids, {1, s.prompt});

  ag::NoGradGuard no_grad;
  const double p = double(s.prompt), g = double(s.gen);
  for (Variant& v : variants) {
    const models::Transformer& model = *v.model;
    const double prefill_all = time_median(
        [&] { model.project(model.decode(prompt, nullptr, ag::Var(), nullptr, {})); }, s.reps);
    const double prefill_last = time_median(
        [&] {
          models::DecoderState state = model.start_decoding(1, s.prompt);
          model.decode_step(prompt, state);
        },
        s.reps);
    decode_seconds(model, prompt, s.gen);  // warm-up
    v.line = {{"engine", "tcat"},
              {"weights", v.weights},
              {"threads", s.threads},
              {"params", model.parameter_count()},
              {"step_weight_bytes", step_weight_bytes(model)},
              {"prefill_all_logits_ms", prefill_all * 1e3},
              {"prefill_all_logits_tok_s", p / prefill_all},
              {"prefill_last_logits_ms", prefill_last * 1e3},
              {"prefill_last_logits_tok_s", p / prefill_last}};
  }
  // Decoding rounds: the probe, then one run of each type, the order alternating between rounds.
  std::vector<double> bandwidths;
  const int rounds = std::max(1, s.reps / 2);
  for (int round = 0; round < rounds; ++round) {
    if (!s.membw.empty()) bandwidths.push_back(bench::membw_probe(s.membw));
    for (size_t i = 0; i < variants.size(); ++i) {
      Variant& v = variants[round % 2 ? variants.size() - 1 - i : i];
      v.decode_runs.push_back(decode_seconds(*v.model, prompt, s.gen));
    }
  }
  for (Variant& v : variants) {
    const double decode = median(v.decode_runs);
    v.line["decode_total_ms"] = decode * 1e3;
    v.line["decode_tok_s"] = g / decode;
    v.line["decode_ms_per_tok"] = decode * 1e3 / g;
    if (!bandwidths.empty()) {
      const double bytes = v.line["step_weight_bytes"].get<double>();
      std::vector<double> shares;
      for (size_t r = 0; r < bandwidths.size(); ++r)
        shares.push_back((g / v.decode_runs[r]) / (bandwidths[r] * 1e9 / bytes));
      v.line["membw_GBps_median"] = median(bandwidths);
      v.line["decode_share_of_limit"] = median(shares);
    }
    bench::print_json_line(v.line);
  }
  if (variants.size() == 2) {
    std::vector<double> speedups;
    for (int r = 0; r < rounds; ++r) speedups.push_back(variants[0].decode_runs[r] / variants[1].decode_runs[r]);
    bench::print_json_line(nlohmann::json{{"bf16_over_f32_decode_paired", median(speedups)}, {"rounds", rounds}});
  }
  return 0;
}
