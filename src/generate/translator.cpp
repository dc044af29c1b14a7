#include "generate/translator.h"

#include <algorithm>
#include <numeric>

#include "data/batch.h"


namespace tcat::generate {

Translator::Translator(const std::string& model_path)
    : path_(train::resolve_model(model_path)), loaded_(train::load_model(path_)) {
  TCAT_CHECK(loaded_.config.layout == models::Layout::EncoderDecoder,
             "model '{}' is not an encoder-decoder model, it cannot translate", path_);
  TCAT_CHECK(loaded_.tokenizer.has_value(), "model '{}' has no tokenizer.model", path_);
  tokenizer_ = std::make_unique<tokenizer::SentencePieceTokenizer>(
      tokenizer::SentencePieceTokenizer::from_serialized(*loaded_.tokenizer, path_ + "/tokenizer.model"));
  TCAT_CHECK(tokenizer_->vocab_size() == loaded_.config.vocab,
             "tokenizer of '{}' has {} pieces but the model's vocabulary is {}", path_, tokenizer_->vocab_size(),
             loaded_.config.vocab);
}

std::vector<std::vector<Translation>> Translator::translate(const std::vector<std::string>& lines,
                                                            const TranslateOptions& opt) const {
  TCAT_CHECK(opt.beam_size >= 1 && opt.n_best >= 1 && opt.n_best <= opt.beam_size && opt.batch_size >= 1,
             "translate: need beam >= 1, 1 <= n-best <= beam and batch >= 1 (got {}, {}, {})", opt.beam_size,
             opt.n_best, opt.batch_size);
  const int64_t max_src = loaded_.config.max_positions - 2;
  std::vector<std::vector<int64_t>> ids(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    ids[i] = tokenizer_->encode(lines[i]);
    // One over-long line must not stop a file: its source is cut to what the model can attend to.
    if (int64_t(ids[i].size()) > max_src) {
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
    const auto hyps = beam_search(*loaded_.model, b.src, bo);
    for (size_t k = 0; k < batch.size(); ++k)
      for (const Hypothesis& h : hyps[k]) out[batch[k]].push_back({tokenizer_->decode(h.tokens), h.score, h.logprob});
    batch.clear();
  };
  for (size_t i : order) {
    if (ids[i].empty()) {
      out[i].push_back({"", 0.0f, 0.0f});
      continue;
    }
    batch.push_back(i);
    if (int64_t(batch.size()) == opt.batch_size) flush();
  }
  flush();
  return out;
}

}  // namespace tcat::generate
