#include "generate/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "generate/search.h"

namespace tcat::generate {
namespace {

// Where decoding starts: the state after the prompt (or decoder_start) and the logits of its last
// position, [1, vocab]; `history` holds the tokens so far (for the repetition penalty).
struct Start {
  models::DecoderState state;
  Tensor logits;
  std::vector<int64_t> history;
};

Start start_prompt(const models::Transformer& model, const std::vector<int64_t>& prompt, int64_t max_new) {
  check_prompt_fits(model, int64_t(prompt.size()), max_new);
  Start s{model.start_decoding(1, int64_t(prompt.size()) + max_new), Tensor(), prompt};
  s.logits = model.decode_step(Tensor::from_ids(prompt, {1, int64_t(prompt.size())}), s.state);
  return s;
}

Start start_source(const models::Transformer& model, const std::vector<int64_t>& source, int64_t decoder_start,
                   int64_t max_new) {
  const models::ArchConfig& c = model.config();
  TCAT_CHECK(c.layout == models::Layout::EncoderDecoder, "generation from a source needs an encoder-decoder model");
  if (source.empty()) throw UsageError("the source has no tokens");
  if (decoder_start < 0 || decoder_start >= c.vocab)
    throw UsageError(fmt::format("decoder start token {} outside the vocabulary of {}", decoder_start, c.vocab));
  if (int64_t(source.size()) > c.max_positions || 1 + max_new > c.max_positions)
    throw UsageError(fmt::format("source of {} tokens or 1 + {} target tokens exceeds the model's {} positions",
                                 source.size(), max_new, c.max_positions));
  ag::NoGradGuard no_grad;
  const ag::Var memory = model.encode(Tensor::from_ids(source, {1, int64_t(source.size())}), nullptr, {});
  Start s{model.start_decoding(memory, nullptr, 1 + max_new), Tensor(), {decoder_start}};
  s.logits = model.decode_step(Tensor::from_ids({decoder_start}, {1}), s.state);
  return s;
}

bool is_eos(int64_t token, const std::vector<int64_t>& eos_ids) {
  return std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end();
}

// HF's ForcedEOSTokenLogitsProcessor: only forced_eos may come last, with score 0 (probability 1).
void force_eos(float* scores, int64_t vocab, int64_t forced_eos) {
  for (int64_t v = 0; v < vocab; ++v) scores[v] = v == forced_eos ? 0.0f : -std::numeric_limits<float>::infinity();
}

void log_softmax_row(const float* logits, int64_t vocab, std::vector<float>& out) {
  const float log_sum = log_sum_exp(logits, vocab);
  out.resize(size_t(vocab));
  for (int64_t v = 0; v < vocab; ++v) out[size_t(v)] = logits[v] - log_sum;
}

// Finished hypotheses of beam search, at most `beams`, with the worst score among them.
struct Finished {
  struct Hypothesis {
    float score;
    std::vector<int64_t> tokens;
  };
  std::vector<Hypothesis> hyps;
  float worst = 1e9f;

  void add(std::vector<int64_t> tokens, float sum_logprobs, int64_t generated, const LmBeamOptions& opt) {
    const float score = sum_logprobs / std::pow(float(generated), opt.length_penalty);
    if (int64_t(hyps.size()) >= opt.beams && score <= worst) return;
    hyps.push_back({score, std::move(tokens)});
    if (int64_t(hyps.size()) > opt.beams) {
      auto by_score = [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; };
      hyps.erase(std::min_element(hyps.begin(), hyps.end(), by_score));
      worst = std::min_element(hyps.begin(), hyps.end(), by_score)->score;
    } else {
      worst = std::min(worst, score);
    }
  }
  bool done(float best_sum_logprobs, int64_t generated, const LmBeamOptions& opt) const {
    if (int64_t(hyps.size()) < opt.beams) return false;
    if (opt.early_stopping) return true;
    return worst >= best_sum_logprobs / std::pow(float(generated), opt.length_penalty);
  }
};

std::vector<int64_t> continue_from(const models::Transformer& model, Start start, const ContinueOptions& opt,
                                   Rng& rng, const TokenCallback& on_token) {
  const int64_t vocab = model.config().vocab;
  std::vector<int64_t> history = std::move(start.history), generated;
  Tensor logits = start.logits;
  while (int64_t(generated.size()) < opt.max_new_tokens) {
    if (opt.forced_eos_id >= 0 && int64_t(generated.size()) + 1 == opt.max_new_tokens)
      force_eos(logits.data<float>(), vocab, opt.forced_eos_id);
    const int64_t token = sample_next(logits.data<float>(), vocab, history, opt.sampling, rng);
    generated.push_back(token);
    history.push_back(token);
    if (on_token && !on_token(token, logits.data<float>())) break;
    if (is_eos(token, opt.eos_ids) || int64_t(generated.size()) == opt.max_new_tokens) break;
    logits = model.decode_step(Tensor::from_ids({token}, {1}), start.state);
  }
  return generated;
}

LmBeamResult beam_from(const models::Transformer& model, Start start, const LmBeamOptions& opt) {
  const int64_t vocab = model.config().vocab, beams = opt.beams;
  models::DecoderState& state = start.state;
  Tensor logits = start.logits;  // one row: every beam starts from the prompt
  std::vector<std::vector<int64_t>> live(1);
  std::vector<float> live_scores{0.0f};
  Finished finished;
  bool finished_enough = false;  // no live beam can beat the finished hypotheses any more
  std::vector<float> logprobs;
  struct Candidate {
    float score;
    int64_t beam, token;
  };
  std::vector<Candidate> candidates;
  for (int64_t generated = 1;; ++generated) {
    candidates.clear();
    for (size_t b = 0; b < live.size(); ++b) {
      log_softmax_row(logits.data<float>() + int64_t(b) * vocab, vocab, logprobs);
      if (opt.forced_eos_id >= 0 && generated == opt.max_new_tokens) force_eos(logprobs.data(), vocab, opt.forced_eos_id);
      for (int64_t v = 0; v < vocab; ++v) candidates.push_back({logprobs[size_t(v)] + live_scores[b], int64_t(b), v});
    }
    const size_t take = std::min(candidates.size(), size_t(2 * beams));
    std::partial_sort(candidates.begin(), candidates.begin() + int64_t(take), candidates.end(),
                      [](const Candidate& a, const Candidate& b) {
                        if (a.score != b.score) return a.score > b.score;
                        return a.beam != b.beam ? a.beam < b.beam : a.token < b.token;
                      });
    std::vector<std::vector<int64_t>> next;
    std::vector<float> next_scores;
    std::vector<int64_t> rows, tokens;
    for (size_t rank = 0; rank < take && int64_t(next.size()) < beams; ++rank) {
      const Candidate& c = candidates[rank];
      if (is_eos(c.token, opt.eos_ids)) {
        if (int64_t(rank) >= beams) continue;
        std::vector<int64_t> hyp = live[size_t(c.beam)];
        hyp.push_back(c.token);
        finished.add(std::move(hyp), c.score, generated, opt);
        continue;
      }
      next.push_back(live[size_t(c.beam)]);
      next.back().push_back(c.token);
      next_scores.push_back(c.score);
      rows.push_back(c.beam);
      tokens.push_back(c.token);
    }
    TCAT_CHECK(int64_t(next.size()) == beams, "beam search: only {} live beams (too many EOS candidates)", next.size());
    finished_enough = finished.done(candidates.front().score, generated, opt);
    live = std::move(next);
    live_scores = std::move(next_scores);
    if (finished_enough || generated == opt.max_new_tokens) break;
    state.reorder(rows);
    logits = model.decode_step(Tensor::from_ids(tokens, {beams}), state);
  }
  if (!finished_enough)
    for (size_t b = 0; b < live.size(); ++b) finished.add(live[b], live_scores[b], int64_t(live[b].size()), opt);
  const auto best = std::max_element(finished.hyps.begin(), finished.hyps.end(),
                                     [](const auto& a, const auto& b) { return a.score < b.score; });
  return {best->tokens, best->score};
}

void check_beam_options(const models::Transformer& model, const LmBeamOptions& opt) {
  TCAT_CHECK(opt.beams >= 1 && opt.max_new_tokens >= 1, "beam search: {} beams, {} new tokens", opt.beams,
             opt.max_new_tokens);
  TCAT_CHECK(model.config().vocab >= 2 * opt.beams, "beam search: {} beams need a vocabulary of at least {}",
             opt.beams, 2 * opt.beams);
}

}  // namespace

void check_prompt_fits(const models::Transformer& model, int64_t prompt_tokens, int64_t max_new) {
  TCAT_CHECK(model.config().layout == models::Layout::DecoderOnly, "generation from a prompt needs a decoder-only model");
  if (prompt_tokens < 1) throw UsageError("the prompt has no tokens");
  const int64_t positions = model.config().max_positions;
  if (prompt_tokens + max_new > positions)
    throw UsageError(fmt::format("prompt of {} tokens plus {} new tokens exceeds the model's context of {}",
                                 prompt_tokens, max_new, positions));
}

std::vector<int64_t> continue_prompt(const models::Transformer& model, const std::vector<int64_t>& prompt,
                                     const ContinueOptions& opt, Rng& rng, const TokenCallback& on_token) {
  validate(opt.sampling);
  return continue_from(model, start_prompt(model, prompt, opt.max_new_tokens), opt, rng, on_token);
}

std::vector<int64_t> continue_source(const models::Transformer& model, const std::vector<int64_t>& source,
                                     int64_t decoder_start, const ContinueOptions& opt, Rng& rng,
                                     const TokenCallback& on_token) {
  validate(opt.sampling);
  return continue_from(model, start_source(model, source, decoder_start, opt.max_new_tokens), opt, rng, on_token);
}

LmBeamResult lm_beam_search(const models::Transformer& model, const std::vector<int64_t>& prompt,
                            const LmBeamOptions& opt) {
  check_beam_options(model, opt);
  return beam_from(model, start_prompt(model, prompt, opt.max_new_tokens), opt);
}

LmBeamResult source_beam_search(const models::Transformer& model, const std::vector<int64_t>& source,
                                int64_t decoder_start, const LmBeamOptions& opt) {
  check_beam_options(model, opt);
  return beam_from(model, start_source(model, source, decoder_start, opt.max_new_tokens), opt);
}

TextStreamer::TextStreamer(std::vector<std::string> stop_strings) {
  for (auto& stop : stop_strings)
    if (!stop.empty()) stops_.push_back(std::move(stop));
}

std::string TextStreamer::update(const std::string& text) {
  if (stopped_) return {};
  text_ = text;
  size_t end = text_.size();
  for (const std::string& stop : stops_) {
    const size_t at = text_.find(stop, printed_ > stop.size() ? printed_ - stop.size() : 0);
    if (at != std::string::npos && at < end) {
      end = at;
      stopped_ = true;
    }
  }
  if (!stopped_) {
    static const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD: a character still incomplete
    while (end >= kReplacement.size() && text_.compare(end - kReplacement.size(), kReplacement.size(), kReplacement) == 0)
      end -= kReplacement.size();
    for (const std::string& stop : stops_)  // a tail that may grow into a stop string
      for (size_t n = std::min(stop.size(), end + 1) - 1; n > 0; --n)
        if (text_.compare(end - n, n, stop, 0, n) == 0) {
          end -= n;
          break;
        }
  }
  if (end <= printed_) return {};
  std::string out = text_.substr(printed_, end - printed_);
  printed_ = end;
  return out;
}

std::string TextStreamer::finish() {
  if (stopped_ || printed_ >= text_.size()) return {};
  std::string out = text_.substr(printed_);
  printed_ = text_.size();
  return out;
}

}  // namespace tcat::generate
