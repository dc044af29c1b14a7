// Same-machine CTranslate2 peer for translation decoding: runs bench/translate_decode's plan
// (bench/data/translation_inputs.json) through libctranslate2, so tcat is compared with CTranslate2
// on this CPU instead of with the figures of ../shared/bench/peers/RESULTS-translation.md, measured
// on another one. Not part of the CMake build: it needs a CTranslate2 install (CPU-only, e.g. 4.8.1
// with OpenBLAS, or with oneDNN for int8) and a model from bench/ct2/make_model.py.
//
// Built by bench/ct2/build.sh, which also builds CTranslate2 and the model. Run:
//   build/ct2/ct2_translate-dnnl --model build/ct2/model --threads 2 --batch 32 --beam 4
//
// Work per batch is the one of translate_decode and of the reference CT2 runs: translate_batch on
// the chunk's source tokens with beam K, one hypothesis, min = max decoding length = L and
// return_end_token, so every hypothesis has exactly L tokens (checked) and the search runs L steps.
// Source ids are turned into the model's token strings ("</s>", "<unk>", "w<id>") once, outside the
// timing; CT2 maps them back to ids inside translate_batch, which the time includes (as in the
// reference, whose Python bench passed token strings too). The time includes the encoder and the
// search, not loading. One warm-up batch, then `runs` passes over the plan; one JSON line per
// (batch, beam) with translate_decode's keys.
#include <ctranslate2/translator.h>
#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../plan_driver.h"

using namespace tcat::bench;

namespace {

struct Settings : PlanSettings {
  std::string model;
  std::string compute_type = "float32";
};

struct Batch {
  std::vector<std::vector<std::string>> source;
  size_t target_len;
};

// The model's token string for id: its vocabulary is "</s>" (0), "<unk>" (1), "w<id>" otherwise.
std::string token(int64_t id) {
  if (id == 0) return "</s>";
  if (id == 1) return "<unk>";
  return "w" + std::to_string(id);
}

std::vector<Batch> make_batches(const nlohmann::json& plan, int batch, int max_batches) {
  const auto ids = plan.at("ids").get<std::vector<std::vector<int64_t>>>();
  const auto key = std::to_string(batch);
  if (!plan.at("plans").contains(key)) throw std::runtime_error(fmt::format("the plan has no batch size {}", batch));
  std::vector<Batch> out;
  for (const auto& chunk : plan.at("plans").at(key)) {
    if (max_batches && int(out.size()) == max_batches) break;
    Batch b{{}, chunk.at("target_len").get<size_t>()};
    for (size_t r : chunk.at("rows").get<std::vector<size_t>>()) {
      std::vector<std::string> tokens;
      for (int64_t id : ids.at(r)) tokens.push_back(token(id));
      b.source.push_back(std::move(tokens));
    }
    out.push_back(std::move(b));
  }
  return out;
}

double decode(ctranslate2::Translator& translator, const Batch& b, int beam) {
  ctranslate2::TranslationOptions opt;
  opt.beam_size = beam;
  opt.num_hypotheses = 1;
  opt.min_decoding_length = b.target_len;
  opt.max_decoding_length = b.target_len;
  opt.return_end_token = true;  // an </s> would count as one of the L tokens (it never comes: min length)
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = translator.translate_batch(b.source, opt, /*max_batch_size=*/b.source.size());
  const double seconds = seconds_since(t0);
  for (const auto& r : results)
    if (r.hypotheses.size() != 1 || r.hypotheses[0].size() != b.target_len)
      throw std::runtime_error(fmt::format("ct2_translate: a hypothesis has {} tokens, {} forced",
                                           r.hypotheses.empty() ? 0 : r.hypotheses[0].size(), b.target_len));
  return seconds;
}

void run(ctranslate2::Translator& translator, const std::string& compute_type, const nlohmann::json& plan,
         const Settings& s, int batch, int beam) {
  const std::vector<Batch> batches = make_batches(plan, batch, s.max_batches);
  PlanTotals totals;
  for (const Batch& b : batches) totals.add(int64_t(b.source.size()), int64_t(b.target_len));
  decode(translator, batches.front(), beam);  // warm-up: allocator caches, first-use setup
  std::vector<double> times;
  for (int r = 0; r < s.runs; ++r) {
    double total = 0;
    for (const Batch& b : batches) total += decode(translator, b, beam);
    times.push_back(total);
  }
  nlohmann::json out = plan_result("ctranslate2", s, batch, beam, totals, times);
  out["compute_type"] = compute_type;
  print_json_line(out);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    auto value = [&] { return option_value(argc, argv, i); };
    if (parse_plan_option(argc, argv, i, s)) continue;
    if (!std::strcmp(argv[i], "--model")) s.model = value();
    else if (!std::strcmp(argv[i], "--compute-type")) s.compute_type = value();
    else {
      fmt::print(stderr, "usage: {} --model DIR {} [--compute-type float32|int8|int8_float32]\n{}", argv[0], kPlanUsage,
                 kPlanUsageDefaults);
      return 2;
    }
  }
  std::string error = plan_settings_error(s);
  if (error.empty() && s.model.empty()) error = "--model DIR is needed";
  if (!error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return 2;
  }
  try {
    std::ifstream in(s.inputs);
    if (!in.good()) throw std::runtime_error("cannot read " + s.inputs + " (written by bench/translation_plan.py)");
    const nlohmann::json plan = nlohmann::json::parse(in);

    // intra_threads = threads, inter_threads = 1: one replica using every thread, as in the reference.
    ctranslate2::models::ModelLoader loader(s.model);
    loader.device = ctranslate2::Device::CPU;
    loader.compute_type = ctranslate2::str_to_compute_type(s.compute_type);
    loader.num_replicas_per_device = 1;
    const auto replicas = loader.load();  // throws when the build cannot run the compute type
    // Report what CT2 actually runs (e.g. "int8_float32" for a requested "int8").
    const std::string effective = ctranslate2::compute_type_to_str(replicas.front()->effective_compute_type());
    ctranslate2::ReplicaPoolConfig pool;
    pool.num_threads_per_replica = s.threads;
    ctranslate2::Translator translator(replicas, pool);

    for (const auto& [batch, beam] : plan_configs(s)) run(translator, effective, plan, s, batch, beam);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
  return 0;
}
