// Translation decoding speed of a Transformer-base encoder-decoder with random weights, on the plan
// of the HF transformers / CTranslate2 measurements (../shared/bench/peers/RESULTS-translation.md)
// and of the PyTorch peer bench/torch_translate.py: bench/data/translation_inputs.json
// (bench/translation_plan.py) gives the source ids and the batches. batch 32: all 512 sentences in
// length-sorted chunks of 32, each forced to L = longest source in the chunk + 2 target tokens;
// batch 1: the first 64 sentences, L = source length + 2. No EOS, no early stop: L decoder steps.
// Model: opus-mt-en-de's shape (6+6 layers, d 512, 8 heads, d_ff 2048, swish/SiLU, post-norm,
// sinusoidal positions, scaled embeddings tied across encoder, decoder and output), vocabulary
// and ids from the JSON (58101; pad = decoder start = 58100, </s> = 0), fp32; --weights bf16 or
// int8 stores its matrices that way (nn::store_weights).
// Prints one JSON line per (batch, beam): the median of `runs` timed passes over the plan after one
// warm-up batch; the time includes the encoder and the search. --membw CMD runs the bandwidth probe
// (membw.c) before each pass, or with --membw-every N before every N batches of a pass, and lists
// each stretch between probes as [seconds, target tokens, GB/s] under "segments" (one list per pass),
// so a speed can be set against the bandwidth of its own few seconds on a machine that drifts.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "plan_driver.h"
#include "core/threading.h"
#include "generate/beam_search.h"
#include "generate/greedy.h"

using namespace tcat;

namespace {

struct Settings : bench::PlanSettings {
  std::string membw;  // bandwidth probe command; empty: none
  int membw_every = 0;  // probe before every N batches of a pass; 0: once per pass
  std::string weights = "f32";
};

struct Plan {
  int64_t vocab = 0, pad_id = 0, eos_id = 0;
  std::vector<std::vector<int64_t>> ids;
  nlohmann::json batches;  // "32" / "1" -> [{"rows": [...], "target_len": L}]
};

Plan load_plan(const std::string& path) {
  std::ifstream in(path);
  TCAT_CHECK(in.good(), "translate_decode: cannot read {} (written by bench/translation_plan.py)", path);
  const nlohmann::json j = nlohmann::json::parse(in);
  Plan p;
  p.vocab = j.at("vocab").get<int64_t>();
  p.pad_id = j.at("pad_id").get<int64_t>();
  p.eos_id = j.at("eos_id").get<int64_t>();
  p.ids = j.at("ids").get<std::vector<std::vector<int64_t>>>();
  p.batches = j.at("plans");
  return p;
}

struct Batch {
  Tensor src;  // i64 [rows, longest source], right-padded with the pad id
  int64_t target_len;
};

std::vector<Batch> make_batches(const Plan& plan, int batch, int max_batches) {
  const auto key = std::to_string(batch);
  TCAT_CHECK(plan.batches.contains(key), "translate_decode: the plan has no batch size {}", batch);
  std::vector<Batch> out;
  for (const auto& chunk : plan.batches.at(key)) {
    if (max_batches && int(out.size()) == max_batches) break;
    const auto rows = chunk.at("rows").get<std::vector<size_t>>();
    size_t width = 0;
    for (size_t r : rows) width = std::max(width, plan.ids.at(r).size());
    std::vector<int64_t> src(rows.size() * width, plan.pad_id);
    for (size_t i = 0; i < rows.size(); ++i)
      std::copy(plan.ids[rows[i]].begin(), plan.ids[rows[i]].end(), src.begin() + i * width);
    out.push_back(
        {Tensor::from_ids(src, {int64_t(rows.size()), int64_t(width)}), chunk.at("target_len").get<int64_t>()});
  }
  return out;
}

// Decodes one batch with its forced length; returns the seconds taken.
double decode(const models::Transformer& model, const Plan& plan, const Batch& b, int beam) {
  const generate::SearchLimits limits{plan.pad_id, plan.eos_id, b.target_len, b.target_len};
  const auto t0 = std::chrono::steady_clock::now();
  size_t produced = 0;
  if (beam == 1) {
    produced = generate::greedy_decode(model, b.src, limits).front().size();
  } else {
    generate::BeamSearchOptions opt;
    opt.beam_size = beam;
    opt.limits = limits;
    produced = generate::beam_search(model, b.src, opt).front().front().tokens.size();
  }
  const double seconds = bench::seconds_since(t0);
  TCAT_CHECK(produced == size_t(b.target_len), "translate_decode: produced {} tokens, {} forced", produced,
             b.target_len);
  return seconds;
}

void run(const models::Transformer& model, const Plan& plan, const Settings& s, int batch, int beam) {
  const std::vector<Batch> batches = make_batches(plan, batch, s.max_batches);
  bench::PlanTotals totals;
  for (const Batch& b : batches) totals.add(b.src.dim(0), b.target_len);
  decode(model, plan, batches.front(), beam);  // warm-up: caches, allocator, oneDNN kernels
  std::vector<double> times;
  nlohmann::json segments = nlohmann::json::array();
  const size_t probe_every = s.membw_every > 0 ? size_t(s.membw_every) : batches.size();
  for (int r = 0; r < s.runs; ++r) {
    double total = 0;
    nlohmann::json pass = nlohmann::json::array();
    for (size_t first = 0; first < batches.size(); first += probe_every) {
      const double gbps = s.membw.empty() ? 0.0 : bench::membw_probe(s.membw);
      double seconds = 0;
      bench::PlanTotals segment;
      for (size_t i = first; i < std::min(first + probe_every, batches.size()); ++i) {
        seconds += decode(model, plan, batches[i], beam);
        segment.add(batches[i].src.dim(0), batches[i].target_len);
      }
      pass.push_back({seconds, segment.target_tokens, gbps});
      total += seconds;
    }
    segments.push_back(pass);
    times.push_back(total);
  }
  nlohmann::json out = bench::plan_result("tcat", s, batch, beam, totals, times);
  out["weights"] = s.weights;
  if (!s.membw.empty()) out["segments"] = segments;
  bench::print_json_line(out);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    auto value = [&] { return bench::option_value(argc, argv, i); };
    if (bench::parse_plan_option(argc, argv, i, s)) continue;
    if (!std::strcmp(argv[i], "--membw")) s.membw = value();
    else if (!std::strcmp(argv[i], "--membw-every")) s.membw_every = std::atoi(value());
    else if (!std::strcmp(argv[i], "--weights")) s.weights = value();
    else {
      fmt::print(stderr, "usage: {} {} [--membw CMD [--membw-every N]] [--weights f32|bf16|int8]\n{}", argv[0],
                 bench::kPlanUsage, bench::kPlanUsageDefaults);
      return 2;
    }
  }
  std::string error = bench::plan_settings_error(s);
  if (error.empty() && s.membw_every < 0) error = "membw-every must not be negative";
  if (!error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return 2;
  }
  set_num_threads(s.threads);
  Plan plan;
  nn::WeightStorage weights;
  try {
    weights = nn::parse_weight_storage(s.weights);
    plan = load_plan(s.inputs);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
  models::ArchConfig cfg = models::preset("transformer-base", plan.vocab);
  cfg.activation = nn::Activation::SiLU;  // Marian's swish
  cfg.pad_id = plan.pad_id;
  Rng rng(0);
  models::Transformer model(cfg, rng);
  nn::store_weights(model, weights);
  for (const auto& [batch, beam] : bench::plan_configs(s)) run(model, plan, s, batch, beam);
  return 0;
}
