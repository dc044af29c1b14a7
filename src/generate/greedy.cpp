#include "generate/greedy.h"

#include "autograd/ops.h"

namespace tcat::generate {

std::vector<std::vector<int64_t>> greedy_decode(const models::Transformer& model, const Tensor& src,
                                                const GreedyOptions& opt) {
  ag::NoGradGuard no_grad;
  const auto& cfg = model.config();
  TCAT_CHECK(cfg.layout == models::Layout::EncoderDecoder, "greedy_decode needs an encoder-decoder model");
  TCAT_CHECK(opt.max_len >= 1 && opt.max_len < cfg.max_positions,
             "greedy_decode: max_len {} must be in [1, {})", opt.max_len, cfg.max_positions);
  const int64_t B = src.dim(0);
  const nn::ForwardContext eval{false, nullptr};
  const Tensor src_valid = models::padding_mask(src, cfg.pad_id);
  const ag::Var memory = model.encode(src, &src_valid, eval);

  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  std::vector<bool> done(size_t(B), false);
  std::vector<int64_t> prefix(size_t(B), opt.bos_id);  // [B, t] row-major, grows by one column per step
  for (int64_t t = 1; t <= opt.max_len; ++t) {
    const Tensor tgt = Tensor::from_ids(prefix, {B, t});
    const ag::Var hidden = model.decode(tgt, nullptr, memory, &src_valid, eval);
    const Tensor last = ag::slice(hidden, 1, t - 1, t).value().contiguous();
    const Tensor logits = model.project(ag::Var(last)).value();  // [B, 1, V]
    const float* l = logits.data<float>();
    std::vector<int64_t> next(static_cast<size_t>(B));
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      const float* row = l + b * cfg.vocab;
      int64_t best = 0;
      for (int64_t v = 1; v < cfg.vocab; ++v)
        if (row[v] > row[best]) best = v;
      next[size_t(b)] = done[size_t(b)] ? cfg.pad_id : best;
      if (!done[size_t(b)]) {
        if (best == opt.eos_id) {
          done[size_t(b)] = true;
        } else {
          out[size_t(b)].push_back(best);
        }
      }
      all_done = all_done && done[size_t(b)];
    }
    if (all_done) break;
    std::vector<int64_t> grown(static_cast<size_t>(B * (t + 1)));
    for (int64_t b = 0; b < B; ++b) {
      std::copy(prefix.begin() + b * t, prefix.begin() + (b + 1) * t, grown.begin() + b * (t + 1));
      grown[size_t(b * (t + 1) + t)] = next[size_t(b)];
    }
    prefix = std::move(grown);
  }
  return out;
}

}  // namespace tcat::generate
