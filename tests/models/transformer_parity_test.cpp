// The encoder-decoder Transformer against torch.nn.Transformer: logits, loss, every parameter's
// gradient, and the parameters after two Adam steps with gradient clipping
// (fixtures from tools/make_transformer_fixtures.py, see tests/fixtures/transformer/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "io/safetensors.h"
#include "models/transformer.h"
#include "train/optim.h"

using namespace tcat;

namespace {

// Our parameter name -> (torch name, first row, end row): cross-attention's fused torch in_proj
// splits into our q and kv projections.
struct Source {
  std::string torch_name;
  int64_t row_begin = 0, row_end = -1;
};

Source torch_source(const std::string& ours, int64_t d) {
  static const std::vector<std::pair<std::regex, std::string>> rules{
      {std::regex(R"(^embed\.weight$)"), "emb.weight"},
      {std::regex(R"(^(encoder|decoder)\.final_norm\.(weight|bias)$)"), "tf.$1.norm.$2"},
      {std::regex(R"(^(encoder|decoder)\.layers\.(\d+)\.self_attn\.qkv\.(weight|bias)$)"),
       "tf.$1.layers.$2.self_attn.in_proj_$3"},
      {std::regex(R"(^(encoder|decoder)\.layers\.(\d+)\.self_attn\.out\.(weight|bias)$)"),
       "tf.$1.layers.$2.self_attn.out_proj.$3"},
      {std::regex(R"(^decoder\.layers\.(\d+)\.cross_attn\.(q|kv)\.(weight|bias)$)"),
       "tf.decoder.layers.$1.multihead_attn.in_proj_$3"},
      {std::regex(R"(^decoder\.layers\.(\d+)\.cross_attn\.out\.(weight|bias)$)"),
       "tf.decoder.layers.$1.multihead_attn.out_proj.$2"},
      {std::regex(R"(^(encoder|decoder)\.layers\.(\d+)\.ffn\.up\.(weight|bias)$)"), "tf.$1.layers.$2.linear1.$3"},
      {std::regex(R"(^(encoder|decoder)\.layers\.(\d+)\.ffn\.down\.(weight|bias)$)"), "tf.$1.layers.$2.linear2.$3"},
      {std::regex(R"(^(encoder|decoder)\.layers\.(\d+)\.norm_self\.(weight|bias)$)"), "tf.$1.layers.$2.norm1.$3"},
      {std::regex(R"(^encoder\.layers\.(\d+)\.norm_ffn\.(weight|bias)$)"), "tf.encoder.layers.$1.norm2.$2"},
      {std::regex(R"(^decoder\.layers\.(\d+)\.norm_cross\.(weight|bias)$)"), "tf.decoder.layers.$1.norm2.$2"},
      {std::regex(R"(^decoder\.layers\.(\d+)\.norm_ffn\.(weight|bias)$)"), "tf.decoder.layers.$1.norm3.$2"},
  };
  for (const auto& [re, replacement] : rules) {
    if (!std::regex_match(ours, re)) continue;
    Source s{std::regex_replace(ours, re, replacement)};
    if (ours.find(".cross_attn.q.") != std::string::npos) s.row_end = d;
    if (ours.find(".cross_attn.kv.") != std::string::npos) s.row_begin = d, s.row_end = 3 * d;
    return s;
  }
  ADD_FAILURE() << "no torch name for parameter " << ours;
  return {};
}

Tensor fixture_tensor(const io::SafetensorsFile& f, const std::string& prefix, const Source& s) {
  Tensor t = f.get(prefix + s.torch_name);
  return s.row_end < 0 ? t : t.slice(0, s.row_begin, s.row_end);
}

// Element-wise |a - b| <= rel * |b| + abs_floor, where the floor is rel times the tensor's largest
// magnitude: values near zero are results of cancellation and carry the tensor's absolute error.
void expect_close(const Tensor& actual, const Tensor& expected, const std::string& what, float rel = 1e-4f) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  const auto a = actual.to_vector(), b = expected.to_vector();
  float max_abs = 0;
  for (float v : b) max_abs = std::max(max_abs, std::fabs(v));
  const float floor = rel * max_abs;
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::fabs(a[i] - b[i]) > rel * std::fabs(b[i]) + floor) {
      if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "]: " << a[i] << " vs reference " << b[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.size() << " elements differ";
}

class TransformerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TransformerParity, MatchesTorchLogitsLossGradsAndAdamSteps) {
  const auto f = io::SafetensorsFile::open(std::string(TCAT_SOURCE_DIR) + "/tests/fixtures/transformer/" +
                                           GetParam() + ".safetensors");
  const auto meta = nlohmann::json::parse(f.metadata().at("config"));
  models::ArchConfig cfg;
  cfg.vocab = meta["vocab"];
  cfg.d_model = meta["d_model"];
  cfg.heads = meta["heads"];
  cfg.d_ff = meta["d_ff"];
  cfg.enc_layers = meta["enc_layers"];
  cfg.dec_layers = meta["dec_layers"];
  cfg.pre_norm = meta["norm_first"];
  cfg.final_norm = meta["final_norm"];
  cfg.norm_eps = meta["eps"];
  cfg.pad_id = meta["pad_id"];
  cfg.dropout = 0.0f;
  Rng rng(1);
  models::Transformer model(cfg, rng);

  auto params = model.named_parameters();
  for (auto& [name, var] : params) var.value().copy_from(fixture_tensor(f, "param.", torch_source(name, cfg.d_model)));

  const Tensor src = f.get("input.src"), tgt_in = f.get("input.tgt_in"), tgt_out = f.get("input.tgt_out");
  const float smoothing = meta["label_smoothing"];
  nn::ForwardContext ctx{true, &rng};
  auto loss_of = [&](bool check_logits) {
    ag::Var logits = model.forward(src, tgt_in, ctx);
    if (check_logits) expect_close(logits.value(), f.get("output.logits"), "logits");
    return ag::cross_entropy(ag::reshape(logits, {-1, cfg.vocab}), tgt_out.reshape({-1}), smoothing, cfg.pad_id);
  };
  {
    const nn::ForwardContext eval{false, nullptr};
    const Tensor src_valid = models::padding_mask(src, cfg.pad_id);
    expect_close(model.encode(src, &src_valid, eval).value(), f.get("output.encoder_out"), "encoder output");
  }

  ag::Var loss = loss_of(true);
  expect_close(loss.value(), f.get("output.loss"), "loss");
  loss.backward();
  for (auto& [name, var] : params) {
    ASSERT_TRUE(var.grad().defined()) << name << " got no gradient";
    expect_close(var.grad(), fixture_tensor(f, "grad.", torch_source(name, cfg.d_model)), "grad of " + name);
  }

  // Two steps of Adam (lr 1e-3, betas 0.9/0.98, eps 1e-9) with clipping to norm 1, as the generator did.
  train::Adam adam({{model.parameters(), 0.0f}}, {0.9f, 0.98f, 1e-9f, false});
  const float norm = train::clip_grad_norm(model.parameters(), 1.0f);
  EXPECT_NEAR(norm, f.get("output.grad_norm_step1").item(), 1e-4f * norm);
  adam.step(1e-3f);
  adam.zero_grad();
  ag::Var loss2 = loss_of(false);  // only the step-2 loss is recorded, not its logits
  EXPECT_NEAR(loss2.value().item(), f.get("output.loss_step2").item(), 1e-4f * std::fabs(loss2.value().item()));
  loss2.backward();
  train::clip_grad_norm(model.parameters(), 1.0f);
  adam.step(1e-3f);
  for (auto& [name, var] : params) {
    const Source src = torch_source(name, cfg.d_model);
    // The key-projection bias has an identically zero gradient (softmax ignores a constant added
    // to every score of a row), so both sides hold rounding noise there, which Adam's m/sqrt(v)
    // turns into arbitrary steps of up to lr. Those entries are checked to have stayed within two
    // such steps; every other entry must match to 1e-4.
    const auto grad = fixture_tensor(f, "grad.", src).to_vector();
    float max_grad = 0;
    for (float g : grad) max_grad = std::max(max_grad, std::fabs(g));
    const auto initial = fixture_tensor(f, "param.", src).to_vector();
    Tensor expected = fixture_tensor(f, "adam2.", src).clone();
    Tensor actual = var.value().clone();
    for (size_t i = 0; i < grad.size(); ++i) {
      if (std::fabs(grad[i]) > 1e-6f * max_grad) continue;
      EXPECT_LE(std::fabs(actual.data<float>()[i] - initial[i]), 2 * 1e-3f + 1e-6f) << name << "[" << i << "]";
      actual.data<float>()[i] = expected.data<float>()[i];
    }
    expect_close(actual, expected, "adam2 " + name);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TransformerParity, ::testing::Values("postnorm", "prenorm"));

}  // namespace
