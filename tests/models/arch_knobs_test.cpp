// The builder's position, norm, FFN and block knobs: for each decoder-only configuration the
// KV-cache path (decode_step) must give the logits of the full forward at every step; configs
// survive a JSON round trip; gradients flow through rotary and ALiBi attention.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "models/transformer.h"

using namespace tcat;
using models::ArchConfig;
using models::PositionKind;

namespace {

constexpr int64_t kVocab = 50;

ArchConfig decoder_config() {
  ArchConfig c;
  c.layout = models::Layout::DecoderOnly;
  c.vocab = kVocab;
  c.d_model = 32;
  c.heads = 4;
  c.d_ff = 64;
  c.dec_layers = 2;
  c.enc_layers = 0;
  c.max_positions = 40;
  c.pre_norm = true;
  c.final_norm = true;
  c.dropout = 0.0f;
  c.scale_embeddings = false;
  return c;
}

struct Variant {
  const char* name;
  ArchConfig config;
};

std::vector<Variant> variants() {
  std::vector<Variant> out;
  auto add = [&](const char* name, auto&& edit) {
    ArchConfig c = decoder_config();
    edit(c);
    out.push_back({name, c});
  };
  add("llama-like", [](ArchConfig& c) {
    c.position = PositionKind::Rotary;
    c.norm = nn::NormKind::RMSNorm;
    c.activation = nn::Activation::SiLU;
    c.gated_ffn = true;
    c.bias = false;
    c.kv_heads = 2;
    c.tie_output = false;
    c.rotary_base = 500.0f;
  });
  add("neox-like", [](ArchConfig& c) {
    c.position = PositionKind::Rotary;
    c.rotary_fraction = 0.25f;
    c.parallel_block = true;
    c.activation = nn::Activation::GELU;
    c.tie_output = false;
  });
  add("gptj-like interleaved", [](ArchConfig& c) {
    c.position = PositionKind::Rotary;
    c.rotary_interleaved = true;
    c.rotary_fraction = 0.5f;
  });
  add("bloom-like", [](ArchConfig& c) {
    c.position = PositionKind::ALiBi;
    c.embed_norm = true;
    c.activation = nn::Activation::GELUTanh;
    c.d_model = 48;
    c.heads = 6;  // not a power of two: the extra slopes
  });
  add("opt-like", [](ArchConfig& c) {
    c.position = PositionKind::Learned;
    c.position_offset = 2;
  });
  return out;
}

Tensor random_ids(Rng& rng, int64_t rows, int64_t len) {
  std::vector<int64_t> ids(size_t(rows * len));
  for (auto& id : ids) id = int64_t(rng.below(kVocab));
  return Tensor::from_ids(ids, {rows, len});
}

TEST(ArchKnobs, DecodeStepMatchesFullForward) {
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    Rng rng(7);
    const models::Transformer model(v.config, rng);
    const Tensor ids = random_ids(rng, 3, 12);
    ag::NoGradGuard no_grad;
    const Tensor full = model.project(model.decode(ids, nullptr, ag::Var(), nullptr, {})).value();
    models::DecoderState state = model.start_decoding(3, 4);  // grows past its capacity
    // A 5-token prompt, then one token at a time.
    Tensor logits = model.decode_step(ids.slice(1, 0, 5).contiguous(), state);
    for (int64_t t = 4; t < 12; ++t) {
      if (t > 4) logits = model.decode_step(ids.slice(1, t, t + 1).contiguous(), state);
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t k = 0; k < kVocab; ++k)
          ASSERT_NEAR(logits.at({r, k}), full.at({r, t, k}), 1e-4) << "row " << r << " step " << t;
    }
  }
}

TEST(ArchKnobs, ConfigJsonRoundTrips) {
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    const ArchConfig back = ArchConfig::from_json(v.config.to_json());
    EXPECT_EQ(back.to_json(), v.config.to_json());
  }
  ArchConfig bad = decoder_config();
  bad.position = PositionKind::Rotary;
  bad.rotary_fraction = 0.1f;  // 8 * 0.1 -> 0 rotary dimensions
  EXPECT_THROW(bad.validate(), UsageError);
  bad.rotary_fraction = 1.0f;
  bad.position_offset = -1;
  EXPECT_THROW(bad.validate(), UsageError);
}

TEST(ArchKnobs, RotaryAndAlibiGradientsMatchFiniteDifferences) {
  for (PositionKind position : {PositionKind::Rotary, PositionKind::ALiBi}) {
    SCOPED_TRACE(int(position));
    ArchConfig c = decoder_config();
    c.position = position;
    c.rotary_fraction = 0.5f;
    c.dec_layers = 1;
    Rng rng(3);
    const models::Transformer model(c, rng);
    const Tensor ids = random_ids(rng, 2, 6);
    auto loss = [&] {
      const ag::Var hidden = model.decode(ids, nullptr, ag::Var(), nullptr, {});
      return ag::sum(ag::mul(hidden, hidden));
    };
    // The fused QKV weight feeds the rotated queries and keys (and the ALiBi-biased scores).
    ag::Var qkv;
    for (auto& [name, p] : model.named_parameters())
      if (name == "decoder.layers.0.self_attn.qkv.weight") qkv = p;
    ASSERT_TRUE(qkv.defined());
    qkv.zero_grad();
    loss().backward();
    const Tensor grad = qkv.grad().clone();
    float* w = qkv.value().data<float>();
    for (int64_t i : {0, 37, 300, 2000, 3000}) {
      const float saved = w[i], h = 1e-2f;
      w[i] = saved + h;
      const double up = loss().value().item();
      w[i] = saved - h;
      const double down = loss().value().item();
      w[i] = saved;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad.data<float>()[i], numeric, 2e-2 * (1 + std::abs(numeric))) << "element " << i;
    }
  }
}

}  // namespace
