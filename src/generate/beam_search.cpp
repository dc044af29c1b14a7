#include "generate/beam_search.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"

namespace tcat::generate {
namespace {

struct Live {
  std::vector<int64_t> tokens;
  float logprob = 0;
};

struct Candidate {
  float logprob;
  int64_t beam;  // index of the parent in the sentence's live hypotheses
  int64_t token;
};

struct Sentence {
  std::vector<Live> live{Live{}};  // starts from BOS alone
  std::vector<Hypothesis> finished;
};

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(const models::Transformer& model, const Tensor& src,
                                                 const BeamSearchOptions& opt) {
  const int64_t k = opt.beam_size;
  TCAT_CHECK(k >= 1 && opt.n_best >= 1 && opt.n_best <= k,
             "beam_search: beam_size {} must be >= 1 and n_best {} in [1, beam_size]", k, opt.n_best);
  TCAT_CHECK(std::isfinite(opt.length_penalty), "beam_search: length penalty {} is not finite", opt.length_penalty);
  ag::NoGradGuard no_grad;
  SearchStart start = start_search(model, src, opt.limits);
  const int64_t eos_id = opt.limits.eos_id;
  auto finish = [&](Sentence& s, std::vector<int64_t> tokens, float logprob, int64_t generated) {
    const float penalty = std::pow((5.0f + float(generated)) / 6.0f, opt.length_penalty);
    s.finished.push_back({std::move(tokens), logprob, logprob / penalty});
  };

  std::vector<Sentence> sentences(static_cast<size_t>(src.dim(0)));
  std::vector<std::vector<Hypothesis>> out(sentences.size());
  std::vector<int64_t> active(sentences.size());  // sentences in the batch, in row order
  for (size_t b = 0; b < active.size(); ++b) active[b] = int64_t(b);
  for (int64_t step = 1; !active.empty(); ++step) {
    std::vector<int64_t> tokens;  // one row per live hypothesis
    for (int64_t s : active)
      for (const Live& h : sentences[size_t(s)].live) tokens.push_back(h.tokens.empty() ? opt.limits.bos_id : h.tokens.back());
    const auto row_best = next_tokens(model, tokens, start.state, 2 * k, step - 1, opt.limits, true);

    std::vector<int64_t> parents, still_active;  // next rows' old rows; sentences that go on
    int64_t first_row = 0;
    for (int64_t s : active) {
      Sentence& sentence = sentences[size_t(s)];
      std::vector<Candidate> candidates;
      for (size_t i = 0; i < sentence.live.size(); ++i)
        for (const ScoredToken& t : row_best[size_t(first_row) + i])
          candidates.push_back({sentence.live[i].logprob + t.score, int64_t(i), t.token});
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const Candidate& a, const Candidate& b) { return a.logprob > b.logprob; });
      std::vector<Live> next;
      std::vector<int64_t> next_parents;
      for (size_t rank = 0; rank < candidates.size() && int64_t(next.size()) < k; ++rank) {
        const Candidate& c = candidates[rank];
        const Live& parent = sentence.live[size_t(c.beam)];
        if (c.token == eos_id) {
          if (int64_t(rank) < k) finish(sentence, parent.tokens, c.logprob, step);
          continue;
        }
        next.push_back({parent.tokens, c.logprob});
        next.back().tokens.push_back(c.token);
        next_parents.push_back(first_row + c.beam);
      }
      first_row += int64_t(sentence.live.size());
      const bool at_limit = step == start.max_len[size_t(s)];
      if (at_limit)
        for (Live& h : next) finish(sentence, std::move(h.tokens), h.logprob, step);
      if (at_limit || next.empty() || int64_t(sentence.finished.size()) >= k) {
        auto& best = sentence.finished;
        std::stable_sort(best.begin(), best.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
        best.resize(std::min<size_t>(best.size(), size_t(opt.n_best)));
        out[size_t(s)] = std::move(best);
        sentence.live.clear();
        continue;
      }
      sentence.live = std::move(next);
      parents.insert(parents.end(), next_parents.begin(), next_parents.end());
      still_active.push_back(s);
    }
    active = std::move(still_active);
    if (!active.empty()) start.state.reorder(parents);
  }
  return out;
}

}  // namespace tcat::generate
