#include "generate/translator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "data/batch.h"
#include "generate/causal_lm.h"
#include "generate/search.h"
#include "tokenizer/load.h"
#include "tokenizer/sentencepiece.h"

namespace tcat::generate {
namespace {

// A Hugging Face folder: its config.json names a model_type (a tcat checkpoint's config.json does not).
bool is_hf_folder(const std::string& path) {
  const std::filesystem::path config = std::filesystem::path(path) / "config.json";
  if (!std::filesystem::is_regular_file(config)) return false;
  std::ifstream in(config);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() && j.contains("model_type");
}

}  // namespace

Translator::Translator(const std::string& model_path, nn::WeightStorage weights) {
  if (is_hf_folder(model_path)) {
    path_ = model_path;
    hf_ = io::load_hf_model(model_path);
    model_ = hf_->model.get();
    tokenizer_ = tokenizer::load_tokenizer(model_path);
    if (hf_->config.decoder_start_id < 0)
      throw UsageError(fmt::format("{}/config.json has no decoder_start_token_id", path_));
  } else {
    path_ = train::resolve_model(model_path);
    loaded_ = train::load_model(path_);
    model_ = loaded_.model.get();
    TCAT_CHECK(loaded_.tokenizer.has_value(), "model '{}' has no tokenizer.model", path_);
    tokenizer_ = std::make_unique<tokenizer::SentencePieceTokenizer>(
        tokenizer::SentencePieceTokenizer::from_serialized(*loaded_.tokenizer, path_ + "/tokenizer.model"));
  }
  TCAT_CHECK(config().layout == models::Layout::EncoderDecoder,
             "model '{}' is not an encoder-decoder model, it cannot translate", path_);
  // HF vocabularies may hold a few more rows than the tokenizer has pieces; tcat's match exactly.
  if (hf_)
    tokenizer::require_tokenizer_fits(*tokenizer_, config().vocab, path_);
  else
    TCAT_CHECK(tokenizer_->vocab_size() == config().vocab,
               "tokenizer of '{}' has {} pieces but the model's vocabulary is {}", path_, tokenizer_->vocab_size(),
               config().vocab);
  nn::store_weights(hf_ ? *hf_->model : *loaded_.model, weights);
}

Translation Translator::translate_hf(const std::vector<int64_t>& source, const TranslateOptions& opt) const {
  const io::HfModelConfig& c = hf_->config;
  const int64_t max_new = std::min<int64_t>(int64_t(source.size()) + 50, config().max_positions - 1);
  if (opt.beam_size == 1) {
    ContinueOptions co;
    co.max_new_tokens = max_new;
    co.eos_ids = c.eos_ids;
    co.forced_eos_id = c.forced_eos_id;
    co.sampling.temperature = 0.0f;
    float logprob = 0;
    Rng unused(0);  // greedy draws nothing
    const auto tokens = continue_source(*model_, source, c.decoder_start_id, co, unused,
                                        [&](int64_t token, const float* logits) {
                                          logprob += logits[token] - log_sum_exp(logits, config().vocab);
                                          return true;
                                        });
    return {tokenizer_->decode(tokens), logprob / float(tokens.size()), logprob};
  }
  LmBeamOptions bo;
  bo.beams = opt.beam_size;
  bo.max_new_tokens = max_new;
  bo.length_penalty = opt.length_penalty;
  bo.eos_ids = c.eos_ids;
  bo.forced_eos_id = c.forced_eos_id;
  const LmBeamResult r = source_beam_search(*model_, source, c.decoder_start_id, bo);
  const float logprob = r.score * std::pow(float(r.tokens.size()), opt.length_penalty);
  return {tokenizer_->decode(r.tokens), r.score, logprob};
}

std::vector<std::vector<Translation>> Translator::translate(const std::vector<std::string>& lines,
                                                            const TranslateOptions& opt) const {
  TCAT_CHECK(opt.beam_size >= 1 && opt.n_best >= 1 && opt.n_best <= opt.beam_size && opt.batch_size >= 1,
             "translate: need beam >= 1, 1 <= n-best <= beam and batch >= 1 (got {}, {}, {})", opt.beam_size,
             opt.n_best, opt.batch_size);
  if (hf_ && opt.n_best > 1) throw UsageError("n-best lists need a tcat checkpoint; Hugging Face models give the best");
  const int64_t max_src = config().max_positions - (hf_ ? 0 : 2);
  std::vector<std::vector<int64_t>> ids(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    ids[i] = hf_ ? tokenizer_->encode_with_special_tokens(lines[i]) : tokenizer_->encode(lines[i]);
    // One over-long line must not stop a file: its source is cut to what the model can attend to
    // (keeping the closing special token of HF sources).
    if (int64_t(ids[i].size()) > max_src) {
      if (hf_) ids[i].erase(ids[i].begin() + (max_src - 1), ids[i].end() - 1);
      ids[i].resize(size_t(max_src));
      ++truncated_;
    }
  }
  std::vector<size_t> order(lines.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });

  std::vector<std::vector<Translation>> out(lines.size());
  std::vector<size_t> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::vector<int64_t>> sources;
    for (size_t i : batch) sources.push_back(ids[i]);
    const data::Seq2SeqBatch b = data::make_batch(sources, sources);
    BeamSearchOptions bo;
    bo.beam_size = opt.beam_size;
    bo.length_penalty = opt.length_penalty;
    bo.n_best = opt.n_best;
    bo.limits.bos_id = tokenizer_->bos_id();
    bo.limits.eos_id = tokenizer_->eos_id();
    const auto hyps = beam_search(*model_, b.src, bo);
    for (size_t k = 0; k < batch.size(); ++k)
      for (const Hypothesis& h : hyps[k]) out[batch[k]].push_back({tokenizer_->decode(h.tokens), h.score, h.logprob});
    batch.clear();
  };
  for (size_t i : order) {
    if (ids[i].empty() || (hf_ && lines[i].empty())) {
      out[i].push_back({"", 0.0f, 0.0f});
      continue;
    }
    if (hf_) {
      out[i].push_back(translate_hf(ids[i], opt));
      continue;
    }
    batch.push_back(i);
    if (int64_t(batch.size()) == opt.batch_size) flush();
  }
  flush();
  return out;
}

}  // namespace tcat::generate
