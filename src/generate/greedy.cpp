#include "generate/greedy.h"

#include "autograd/ops.h"

namespace tcat::generate {

std::vector<std::vector<int64_t>> greedy_decode(const models::Transformer& model, const Tensor& src,
                                                const GreedyOptions& opt) {
  ag::NoGradGuard no_grad;
  SearchStart start = start_search(model, src, opt);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(src.dim(0)));
  std::vector<int64_t> sentence_of_row(out.size());  // the sentence each state row decodes
  for (size_t b = 0; b < out.size(); ++b) sentence_of_row[b] = int64_t(b);
  std::vector<int64_t> tokens(out.size(), opt.bos_id), best(out.size());
  for (int64_t step = 1; !tokens.empty(); ++step) {
    const int64_t rows = int64_t(tokens.size());
    const auto top = next_tokens(model, tokens, start.state, 1, step - 1, opt, false);
    for (int64_t r = 0; r < rows; ++r)
      best[size_t(r)] = top[size_t(r)].empty() ? opt.eos_id : top[size_t(r)].front().token;  // no usable logit (NaN): stop
    std::vector<int64_t> keep, next, next_sentence;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t s = sentence_of_row[size_t(r)], token = best[size_t(r)];
      if (token == opt.eos_id) continue;
      out[size_t(s)].push_back(token);
      if (step == start.max_len[size_t(s)]) continue;
      keep.push_back(r);
      next.push_back(token);
      next_sentence.push_back(s);
    }
    if (int64_t(keep.size()) != rows && !keep.empty()) start.state.reorder(keep);
    tokens = std::move(next);
    sentence_of_row = std::move(next_sentence);
  }
  return out;
}

}  // namespace tcat::generate
