// Parity with Hugging Face transformers 4.36.2 on every folder of the fixture root
// ($TCAT_HF_FIXTURES, else ../shared/fixtures/hf-tiny): each folder is one test, run by the same
// code for decoders, encoders and encoder-decoders. Hidden states (of each stack) and logits
// within 1e-4 absolute, greedy continuations identical (and their step scores within 2e-4),
// beam-4 outputs identical with the same sequence score. Folders of a model_type tcat does not
// load yet are reported as skipped, by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "generate/causal_lm.h"
#include "io/hf_model.h"
#include "nn/layers.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-4;
// KV-cached decoding sums in another order than the reference's and runs up to 16 steps. On the
// t5_v1_1 fixture (residual stream up to 28, unscaled attention) a float64 evaluation of the same
// weights puts transformers' fp32 step scores up to 5.2e-5 and tcat's up to 1.05e-4 from exact (tcat
// is closer on 12 of 16 steps; two ill-conditioned steps dominate), so they differ by up to 1.4e-4.
constexpr double kStepScoreTolerance = 2e-4;

fs::path fixture_root() {
  if (const char* env = std::getenv("TCAT_HF_FIXTURES")) return env;
  return fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "fixtures" / "hf-tiny";
}

// The fixture folders (those with a reference.json), or one empty name when the root is absent.
std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fixture_root(), ec))
    if (entry.is_directory() && fs::exists(entry.path() / "reference.json")) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back("");
  return names;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

Tensor ids_tensor(const nlohmann::json& rows) {
  std::vector<int64_t> ids;
  for (const auto& row : rows)
    for (const auto& id : row) ids.push_back(id.get<int64_t>());
  return Tensor::from_ids(ids, {int64_t(rows.size()), int64_t(rows.at(0).size())});
}

// Largest |got - want| over a [B, T, D] tensor and nested JSON lists of the same shape.
double max_abs_diff(const Tensor& got, const nlohmann::json& want) {
  const std::vector<float> g = got.to_vector();
  std::vector<double> w;
  for (const auto& row : want)
    for (const auto& step : row)
      for (const auto& x : step) w.push_back(x.get<double>());
  EXPECT_EQ(g.size(), w.size()) << "element count " << got.desc();
  double worst = 0;
  for (size_t i = 0; i < std::min(g.size(), w.size()); ++i) worst = std::max(worst, std::abs(double(g[i]) - w[i]));
  return worst;
}

std::vector<int64_t> id_list(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

bool all_ones(const nlohmann::json& mask) {
  for (const auto& row : mask)
    for (const auto& v : row)
      if (v.get<int>() != 1) return false;
  return true;
}

int64_t optional_id(const nlohmann::json& config, const char* key) {
  return config.contains(key) && !config.at(key).is_null() ? config.at(key).get<int64_t>() : -1;
}

struct Logits {
  Tensor logits;
  std::vector<ag::Var> hidden;          // the decoder's (or the only stack's)
  std::vector<ag::Var> encoder_hidden;  // encoder-decoders
};

// The fixture's forward pass for the model's layout (inference; caller holds a NoGradGuard).
Logits forward_logits(const models::Transformer& model, const nlohmann::json& forward) {
  Logits out;
  const Tensor ids = ids_tensor(forward.at("input_ids"));
  ag::Var last;
  switch (model.config().layout) {
    case models::Layout::DecoderOnly: last = model.decode(ids, nullptr, ag::Var(), nullptr, {}, &out.hidden); break;
    case models::Layout::EncoderOnly: last = model.encode(ids, nullptr, {}, &out.hidden); break;
    case models::Layout::EncoderDecoder: {
      const ag::Var memory = model.encode(ids, nullptr, {}, &out.encoder_hidden);
      last = model.decode(ids_tensor(forward.at("decoder_input_ids")), nullptr, memory, nullptr, {}, &out.hidden);
      break;
    }
  }
  out.logits = model.project(last).value();
  return out;
}

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, MatchesTransformers) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no Hugging Face fixtures at " << fixture_root();
  const fs::path dir = fixture_root() / name;
  const nlohmann::json ref = read_json(dir / "reference.json");
  const std::string model_type = ref.at("model_type");
  const auto supported = models::hf_model_types();
  if (std::find(supported.begin(), supported.end(), model_type) == supported.end())
    GTEST_SKIP() << name << ": model_type '" << model_type << "' is not implemented yet";

  const io::HfModel loaded = io::load_hf_model(dir.string());
  const models::Transformer& model = *loaded.model;
  const nlohmann::json& forward = ref.at("forward");
  ASSERT_TRUE(all_ones(forward.at("attention_mask"))) << "padded fixture inputs are not handled by this test";

  // Forward: every hidden state of each stack and the logits.
  ag::NoGradGuard no_grad;
  double worst_hidden = 0;
  auto check_hidden = [&](const std::vector<ag::Var>& got, const nlohmann::json& want, const char* stack) {
    ASSERT_EQ(got.size(), want.size()) << stack << " hidden state count";
    for (size_t i = 0; i < got.size(); ++i) {
      const double diff = max_abs_diff(got[i].value(), want[i]);
      EXPECT_LE(diff, kTolerance) << stack << " hidden state " << i;
      worst_hidden = std::max(worst_hidden, diff);
    }
  };
  const Logits logits = forward_logits(model, forward);
  if (forward.contains("hidden_states")) check_hidden(logits.hidden, forward.at("hidden_states"), "the");
  if (forward.contains("encoder_hidden_states"))
    check_hidden(logits.encoder_hidden, forward.at("encoder_hidden_states"), "encoder");
  if (forward.contains("decoder_hidden_states"))
    check_hidden(logits.hidden, forward.at("decoder_hidden_states"), "decoder");
  const double logit_diff = max_abs_diff(logits.logits, forward.at("logits"));
  EXPECT_LE(logit_diff, kTolerance) << "logits";
  if (!ref.contains("generation")) {
    std::cout << fmt::format("[ parity   ] {}: max |hidden diff| {:.2e}, max |logit diff| {:.2e}\n", name, worst_hidden,
                             logit_diff);
    RecordProperty("max_logit_diff", fmt::format("{:.3e}", logit_diff));
    return;
  }

  // Greedy and beam search, with the eos ids of generation_config.
  const nlohmann::json& gen_config = ref.at("generation_config");
  std::vector<int64_t> eos_ids;
  if (!gen_config.at("eos_token_id").is_null()) {
    const auto& eos = gen_config.at("eos_token_id");
    eos_ids = eos.is_array() ? id_list(eos) : std::vector<int64_t>{eos.get<int64_t>()};
  }
  const bool seq2seq = model.config().layout == models::Layout::EncoderDecoder;
  const int64_t decoder_start = optional_id(gen_config, "decoder_start_token_id");
  const int64_t forced_eos = optional_id(gen_config, "forced_eos_token_id");
  double worst_score = 0;
  int greedy_runs = 0, beam_runs = 0;
  for (const auto& run : ref.at("generation").at("greedy")) {
    const std::vector<int64_t> prompt = id_list(run.at("input_ids").at(0));
    generate::ContinueOptions opt;
    opt.max_new_tokens = run.at("kwargs").at("max_new_tokens");
    opt.eos_ids = eos_ids;
    opt.sampling.temperature = 0.0f;
    opt.forced_eos_id = forced_eos;
    std::vector<std::vector<float>> step_logits;
    Rng rng(0);
    const generate::TokenCallback record = [&](int64_t, const float* logits) {
      step_logits.emplace_back(logits, logits + model.config().vocab);
      return true;
    };
    const std::vector<int64_t> got = seq2seq
                                         ? generate::continue_source(model, prompt, decoder_start, opt, rng, record)
                                         : generate::continue_prompt(model, prompt, opt, rng, record);
    EXPECT_EQ(got, id_list(run.at("new_tokens").at(0))) << "greedy continuation";
    const auto& scores = run.at("step_scores");
    for (size_t s = 0; s < std::min(step_logits.size(), scores.size()); ++s)
      for (size_t v = 0; v < step_logits[s].size(); ++v) {
        // -inf (written as null) where a logits processor ruled a token out.
        if (scores[s][v].is_null()) continue;
        const double want = scores[s][v].get<double>();
        if (std::isfinite(want)) worst_score = std::max(worst_score, std::abs(step_logits[s][v] - want));
      }
    ++greedy_runs;
  }
  EXPECT_LE(worst_score, kStepScoreTolerance) << "greedy step scores";
  for (const auto& run : ref.at("generation").at("beam")) {
    const auto& kwargs = run.at("kwargs");
    generate::LmBeamOptions opt;
    opt.beams = kwargs.at("num_beams");
    opt.max_new_tokens = kwargs.at("max_new_tokens");
    opt.length_penalty = kwargs.value("length_penalty", 1.0f);
    opt.early_stopping = kwargs.value("early_stopping", false);
    opt.eos_ids = eos_ids;
    opt.forced_eos_id = forced_eos;
    const std::vector<int64_t> input = id_list(run.at("input_ids").at(0));
    const generate::LmBeamResult got = seq2seq ? generate::source_beam_search(model, input, decoder_start, opt)
                                               : generate::lm_beam_search(model, input, opt);
    EXPECT_EQ(got.tokens, id_list(run.at("new_tokens").at(0))) << "beam search";
    EXPECT_NEAR(got.score, run.at("sequences_scores").at(0).get<double>(), kTolerance) << "beam score";
    ++beam_runs;
  }
  std::cout << fmt::format("[ parity   ] {}: max |hidden diff| {:.2e}, max |logit diff| {:.2e}, max |step score diff| "
                           "{:.2e}, {} greedy and {} beam runs\n",
                           name, worst_hidden, logit_diff, worst_score, greedy_runs, beam_runs);
  RecordProperty("max_logit_diff", fmt::format("{:.3e}", logit_diff));
}

// Load -> save -> load gives identical logits, for every fixture tcat can load.
TEST_P(HfParity, SaveThenLoadGivesIdenticalLogits) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no Hugging Face fixtures at " << fixture_root();
  const fs::path dir = fixture_root() / name;
  const std::string model_type = read_json(dir / "config.json").at("model_type");
  const auto supported = models::hf_model_types();
  if (std::find(supported.begin(), supported.end(), model_type) == supported.end())
    GTEST_SKIP() << name << ": model_type '" << model_type << "' is not implemented yet";
  const io::HfModel first = io::load_hf_model(dir.string());
  const fs::path saved = fs::temp_directory_path() / fmt::format("tcat_hf_save_{}_{}", name, ::getpid());
  fs::remove_all(saved);
  io::save_hf_model(*first.model, first.config, saved.string());
  const io::HfModel second = io::load_hf_model(saved.string());
  fs::remove_all(saved);
  EXPECT_EQ(second.config.arch.to_json(), first.config.arch.to_json());
  const nlohmann::json forward = read_json(dir / "reference.json").at("forward");
  ag::NoGradGuard no_grad;
  EXPECT_EQ(forward_logits(*first.model, forward).logits.to_vector(),
            forward_logits(*second.model, forward).logits.to_vector());
}

// Inference with compact weights (nn::store_weights) on every family: each runs with bf16 and int8
// matrices (embedding tables, tied projections and all), and its logits move from the reference by
// rounding only. Relative L2 errors measured: bf16 0.5-3%, int8 3-12%, except on the T5 fixtures,
// which amplify rounding about tenfold (residual stream up to 28, unscaled attention): bf16 5-6%,
// int8 27-49%. Bounds: 4% / 15%, and 10% / 60% for T5. A compensation 6% off (checked) already gives
// 30-90% on the others.
TEST_P(HfParity, CompactWeightsStayNearTheReference) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no Hugging Face fixtures at " << fixture_root();
  const fs::path dir = fixture_root() / name;
  const nlohmann::json ref = read_json(dir / "reference.json");
  const auto supported = models::hf_model_types();
  if (std::find(supported.begin(), supported.end(), ref.at("model_type")) == supported.end())
    GTEST_SKIP() << name << ": model_type " << ref.at("model_type") << " is not implemented yet";
  const nlohmann::json& forward = ref.at("forward");
  std::vector<double> want;
  for (const auto& row : forward.at("logits"))
    for (const auto& step : row)
      for (const auto& x : step) want.push_back(x.get<double>());
  ag::NoGradGuard no_grad;
  const bool amplifies = ref.at("model_type") == "t5";
  const std::pair<nn::WeightStorage, double> cases[] = {{nn::WeightStorage::BF16, amplifies ? 0.1 : 0.04},
                                                        {nn::WeightStorage::Int8, amplifies ? 0.6 : 0.15}};
  for (const auto& [storage, bound] : cases) {
    const io::HfModel loaded = io::load_hf_model(dir.string());
    nn::store_weights(*loaded.model, storage);
    const std::vector<float> got = forward_logits(*loaded.model, forward).logits.to_vector();
    ASSERT_EQ(got.size(), want.size());
    double err = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      norm += want[i] * want[i];
    }
    const double relative = std::sqrt(err / norm);
    std::cout << fmt::format("[ compact  ] {} {}: relative L2 error of the logits {:.2e}\n", name,
                             storage == nn::WeightStorage::BF16 ? "bf16" : "int8", relative);
    EXPECT_LT(relative, bound) << (storage == nn::WeightStorage::BF16 ? "bf16" : "int8");
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param.empty() ? "absent" : info.param;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfParity, ::testing::ValuesIn(fixture_names()), test_name);

}  // namespace
