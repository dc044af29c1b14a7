// Generation with Hugging Face's semantics: decoder-only models (GPT-2, Llama, ...) continue a
// prompt, which goes through the KV cache once; encoder-decoder models (BART, Marian, T5) encode a
// source once and decode from decoder_start. Then one token per step: greedy and sampled
// continuation, and beam search as transformers 4.36's BeamSearchScorer does it, so the fixtures'
// outputs are reproduced.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "generate/sampling.h"
#include "models/transformer.h"

namespace tcat::generate {

struct ContinueOptions {
  int64_t max_new_tokens = 16;
  std::vector<int64_t> eos_ids;  // the continuation ends after producing one of them
  SamplingOptions sampling;      // temperature 0: greedy
  int64_t forced_eos_id = -1;    // the last allowed token is this one (HF forced_eos_token_id); -1 = none
};

// Called with each new token and the logits it was chosen from; returns false to stop.
using TokenCallback = std::function<bool(int64_t token, const float* logits)>;

// Throws UsageError when a prompt of `prompt_tokens` (at least 1) plus max_new tokens does not
// fit the model's positions. continue_prompt checks this itself; callers that print the prompt
// first call it before printing.
void check_prompt_fits(const models::Transformer& model, int64_t prompt_tokens, int64_t max_new);

// The tokens that follow `prompt` (not empty), an EOS included if one was produced. The prompt
// plus max_new_tokens must fit the model's positions.
std::vector<int64_t> continue_prompt(const models::Transformer& model, const std::vector<int64_t>& prompt,
                                     const ContinueOptions& opt, Rng& rng, const TokenCallback& on_token = {});
// Encoder-decoder: the tokens generated for `source` (not empty) after decoder_start.
std::vector<int64_t> continue_source(const models::Transformer& model, const std::vector<int64_t>& source,
                                     int64_t decoder_start, const ContinueOptions& opt, Rng& rng,
                                     const TokenCallback& on_token = {});

struct LmBeamOptions {
  int64_t beams = 4;
  int64_t max_new_tokens = 16;
  float length_penalty = 1.0f;  // score = sum of log-probabilities / generated_length^length_penalty
  bool early_stopping = false;  // Hugging Face's True/False (not "never")
  std::vector<int64_t> eos_ids;
  int64_t forced_eos_id = -1;   // as in ContinueOptions
};

struct LmBeamResult {
  std::vector<int64_t> tokens;  // the generated tokens, ending with an EOS if the best hypothesis has one
  float score = 0;              // Hugging Face's sequences_scores
};

// Beam search over one prompt: each step ranks every continuation of the live beams by summed
// log-probability and walks the best 2 * beams: an EOS within the first `beams` of them finishes
// a hypothesis (scored by generated length, EOS included), others become the next beams. Stops at
// max_new_tokens or when no live beam can beat the finished ones; the best finished hypothesis wins.
LmBeamResult lm_beam_search(const models::Transformer& model, const std::vector<int64_t>& prompt,
                            const LmBeamOptions& opt);
// Encoder-decoder: the same search over the continuations of decoder_start for `source`.
LmBeamResult source_beam_search(const models::Transformer& model, const std::vector<int64_t>& source,
                                int64_t decoder_start, const LmBeamOptions& opt);

// Streams generated text: given the decoding of everything generated so far after each token, it
// returns only what is safe to print. An unfinished UTF-8 character (decoders show it as U+FFFD)
// and any tail that could begin a stop string are held back; once a stop string appears, the text
// before it is released and stopped() turns true.
class TextStreamer {
 public:
  // Empty stop strings are ignored.
  explicit TextStreamer(std::vector<std::string> stop_strings);
  std::string update(const std::string& text);
  std::string finish();  // whatever is still held back, at the end of generation
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;     // the latest full text
  size_t printed_ = 0;   // bytes of text_ already released
  bool stopped_ = false;
};

}  // namespace tcat::generate
