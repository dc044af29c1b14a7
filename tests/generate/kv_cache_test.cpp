// Incremental decoding with the KV cache against the full recompute: at every step the logits of
// Transformer::decode_step must equal project(decode(whole prefix)) at the last position, for
// post-norm and pre-norm models, padded sources, GQA, learned positions, a decoder-only layout,
// multi-token steps (prompts), and after beam-style row reordering (growing, permuting, shrinking).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "models/transformer.h"

using namespace tcat;

namespace {

constexpr float kTolerance = 1e-5f;
constexpr int64_t kVocab = 40, kPad = 0;

models::ArchConfig small_config(bool pre_norm) {
  models::ArchConfig c = models::preset("transformer-tiny", kVocab);
  c.dropout = 0.0f;
  c.pre_norm = pre_norm;
  c.final_norm = pre_norm;
  c.pad_id = kPad;
  return c;
}

// rows x len random ids in [3, kVocab); the first ids of row r stay, the rest become padding.
Tensor random_ids(Rng& rng, int64_t rows, int64_t len, const std::vector<int64_t>& lengths = {}) {
  std::vector<int64_t> ids(size_t(rows * len));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < len; ++t) {
      const bool pad = !lengths.empty() && t >= lengths[size_t(r)];
      ids[size_t(r * len + t)] = pad ? kPad : 3 + int64_t(rng.below(kVocab - 3));
    }
  return Tensor::from_ids(ids, {rows, len});
}

Tensor rows_of(const Tensor& t, const std::vector<int64_t>& rows) {
  std::vector<int64_t> all = t.to_ids(), picked;
  const int64_t width = t.dim(1);
  for (int64_t r : rows) picked.insert(picked.end(), all.begin() + r * width, all.begin() + (r + 1) * width);
  return Tensor::from_ids(picked, {int64_t(rows.size()), width});
}

// Logits of the last position of project(decode(tgt)) for each row, [N, vocab].
Tensor full_recompute(const models::Transformer& model, const Tensor& src, const Tensor& tgt) {
  const nn::ForwardContext eval{};
  ag::Var memory;
  Tensor src_valid;
  if (src.defined()) {
    src_valid = models::padding_mask(src, model.config().pad_id);
    memory = model.encode(src, &src_valid, eval);
  }
  const ag::Var hidden = model.decode(tgt, nullptr, memory, src.defined() ? &src_valid : nullptr, eval);
  const int64_t T = tgt.dim(1);
  const Tensor last = hidden.value().slice(1, T - 1, T).contiguous();
  return model.project(ag::Var(last)).value().reshape({tgt.dim(0), model.config().vocab});
}

void expect_close(const Tensor& cached, const Tensor& full, const std::string& what) {
  ASSERT_EQ(cached.shape(), full.shape()) << what;
  const auto a = cached.to_vector(), b = full.to_vector();
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  EXPECT_LE(worst, kTolerance) << what;
}

// Feeds the columns of tgt from state.length() on, the first `chunk` of them in one step and
// the rest one at a time, checking the logits after each step.
void check_steps(const models::Transformer& model, const Tensor& src, const Tensor& tgt,
                 models::DecoderState& state, int64_t chunk, const std::string& name) {
  for (int64_t t = state.length() + chunk; t <= tgt.dim(1); ++t) {
    const Tensor step_ids = tgt.slice(1, state.length(), t).contiguous();
    const Tensor cached = model.decode_step(step_ids, state);
    EXPECT_EQ(state.length(), t);
    expect_close(cached, full_recompute(model, src, tgt.slice(1, 0, t).contiguous()),
                 name + " step " + std::to_string(t));
  }
}

void check_encoder_decoder(const models::ArchConfig& cfg, const std::string& name) {
  ag::NoGradGuard no_grad;
  Rng rng(7);
  models::Transformer model(cfg, rng);
  const Tensor src = random_ids(rng, 3, 7, {7, 4, 2});
  const Tensor tgt = random_ids(rng, 3, 9);
  const Tensor src_valid = models::padding_mask(src, kPad);
  const ag::Var memory = model.encode(src, &src_valid, {});

  models::DecoderState state = model.start_decoding(memory, &src_valid, 4);  // grows past 4
  check_steps(model, src, tgt.slice(1, 0, 5).contiguous(), state, 1, name);

  // Reorder as beam search does: a row repeated, the rows permuted, one dropped, then beams.
  const std::vector<int64_t> order{2, 0, 0};
  state.reorder(order);
  Tensor src_now = rows_of(src, order), tgt_now = rows_of(tgt, order);
  check_steps(model, src_now, tgt_now.slice(1, 0, 7).contiguous(), state, 2, name + " reordered");
  const std::vector<int64_t> beams{0, 0, 1, 1, 2, 2};  // groups of 2 rows share a memory row
  state.reorder(beams);
  src_now = rows_of(src_now, beams), tgt_now = rows_of(tgt_now, beams);
  check_steps(model, src_now, tgt_now.slice(1, 0, 8).contiguous(), state, 1, name + " as beams");
  const std::vector<int64_t> shuffle{1, 0, 5, 4, 3, 3};  // groups broken up
  state.reorder(shuffle);
  src_now = rows_of(src_now, shuffle), tgt_now = rows_of(tgt_now, shuffle);
  check_steps(model, src_now, tgt_now.slice(1, 0, 8).contiguous(), state, 1, name + " shuffled");
  const std::vector<int64_t> fewer{4, 1, 0};  // sentences finished: fewer rows, rearranged in place
  state.reorder(fewer);
  src_now = rows_of(src_now, fewer), tgt_now = rows_of(tgt_now, fewer);
  check_steps(model, src_now, tgt_now, state, 1, name + " fewer rows");
}

}  // namespace

TEST(KVCache, PostNormMatchesFullRecompute) { check_encoder_decoder(small_config(false), "post-norm"); }

TEST(KVCache, PreNormMatchesFullRecompute) { check_encoder_decoder(small_config(true), "pre-norm"); }

TEST(KVCache, GroupedQueryLearnedPositionsMatchFullRecompute) {
  models::ArchConfig cfg = small_config(true);
  cfg.kv_heads = 2;
  cfg.position = models::PositionKind::Learned;
  cfg.share_embeddings = false;
  cfg.tie_output = false;
  cfg.norm = nn::NormKind::RMSNorm;
  cfg.activation = nn::Activation::SiLU;
  cfg.gated_ffn = true;
  check_encoder_decoder(cfg, "gqa");
}

TEST(KVCache, DecoderOnlyPromptThenSteps) {
  ag::NoGradGuard no_grad;
  for (bool parallel : {false, true}) {
    models::ArchConfig cfg = small_config(true);
    cfg.layout = models::Layout::DecoderOnly;
    cfg.parallel_block = parallel;
    Rng rng(3);
    models::Transformer model(cfg, rng);
    const Tensor tgt = random_ids(rng, 2, 8);
    models::DecoderState state = model.start_decoding(2, 8);
    check_steps(model, Tensor(), tgt, state, 3, parallel ? "parallel decoder-only" : "decoder-only");
  }
}

TEST(KVCache, RejectsMismatchedInput) {
  ag::NoGradGuard no_grad;
  Rng rng(1);
  models::Transformer model(small_config(false), rng);
  const Tensor src = random_ids(rng, 2, 5);
  const Tensor src_valid = models::padding_mask(src, kPad);
  models::DecoderState state = model.start_decoding(model.encode(src, &src_valid, {}), &src_valid, 8);
  EXPECT_THROW(model.decode_step(random_ids(rng, 3, 1), state), Error);
  EXPECT_THROW(model.start_decoding(2, 8), Error);  // not a decoder-only model
}
