#include "models/transformer.h"

#include <algorithm>
#include <cmath>

namespace tcat::models {

Tensor padding_mask(const Tensor& ids, int64_t pad_id) {
  const Tensor c = ids.to(DType::I64).contiguous();
  Tensor m = Tensor::empty(ids.shape(), DType::U8);
  const int64_t* p = c.data<int64_t>();
  uint8_t* q = m.data<uint8_t>();
  for (int64_t i = 0; i < c.numel(); ++i) q[i] = p[i] != pad_id;
  return m;
}

Tensor sinusoidal_table(int64_t positions, int64_t d) {
  Tensor t = Tensor::zeros({positions, d});
  float* p = t.data<float>();
  for (int64_t pos = 0; pos < positions; ++pos) {
    for (int64_t i = 0; i < d; i += 2) {
      // Same float32 computation as the reference implementations, so tables match bit for bit.
      const float div = std::exp(float(i) * (-std::log(10000.0f) / float(d)));
      const float angle = float(pos) * div;
      p[pos * d + i] = std::sin(angle);
      if (i + 1 < d) p[pos * d + i + 1] = std::cos(angle);
    }
  }
  return t;
}

Tensor sinusoidal_halves_table(int64_t positions, int64_t d) {
  Tensor t = Tensor::zeros({positions, d});
  float* p = t.data<float>();
  const int64_t half = (d + 1) / 2;
  for (int64_t pos = 0; pos < positions; ++pos)
    for (int64_t j = 0; j < half; ++j) {
      // float64 angles as Hugging Face computes them (numpy), rounded once.
      const double angle = double(pos) / std::pow(10000.0, double(2 * j) / double(d));
      p[pos * d + j] = float(std::sin(angle));
      if (half + j < d) p[pos * d + half + j] = float(std::cos(angle));
    }
  return t;
}

Transformer::Transformer(const ArchConfig& config, const nn::Init& init) : cfg_(config) {
  cfg_.validate();
  const int64_t width = cfg_.embed_width();
  const float emb_std = 1.0f / std::sqrt(float(width));
  const bool has_encoder = cfg_.layout != Layout::DecoderOnly;
  const bool has_decoder = cfg_.layout != Layout::EncoderOnly;

  if (has_encoder) {
    src_embed_ = std::make_unique<nn::Embedding>(cfg_.vocab, width, emb_std, init);
    add_module(has_decoder && cfg_.share_embeddings ? "embed" : "src_embed", *src_embed_);
  }
  if (has_decoder) {
    if (has_encoder && cfg_.share_embeddings) {
      tgt_embed_ = nullptr;  // decode() uses src_embed_
    } else {
      tgt_embed_ = std::make_unique<nn::Embedding>(cfg_.vocab, width, emb_std, init);
      add_module(has_encoder ? "tgt_embed" : "embed", *tgt_embed_);
    }
  }
  if (cfg_.position == PositionKind::Learned) {
    const int64_t rows = cfg_.max_positions + cfg_.position_offset;
    pos_embed_ = std::make_unique<nn::Embedding>(rows, width, 0.02f, init);
    if (has_encoder && has_decoder) {
      tgt_pos_embed_ = std::make_unique<nn::Embedding>(rows, width, 0.02f, init);
      add_module("src_pos_embed", *pos_embed_);
      add_module("tgt_pos_embed", *tgt_pos_embed_);
    } else {
      add_module("pos_embed", *pos_embed_);
    }
  } else if (cfg_.position == PositionKind::Sinusoidal) {
    sinusoids_ = sinusoidal_table(cfg_.max_positions, width);
  } else if (cfg_.position == PositionKind::SinusoidalHalves) {
    sinusoids_ = sinusoidal_halves_table(cfg_.max_positions, width);
  }
  if (cfg_.type_vocab > 0) {
    type_embed_ = std::make_unique<nn::Embedding>(cfg_.type_vocab, width, 0.02f, init);
    add_module("type_embed", *type_embed_);
  }
  if (cfg_.embed_dim > 0) {
    embed_proj_ = std::make_unique<nn::Linear>(width, cfg_.d_model, true, init);
    add_module("embed_proj", *embed_proj_);
  }

  nn::BlockOptions block{cfg_.d_model, cfg_.heads,     cfg_.kv_heads,       cfg_.d_ff,
                         false,        false,          cfg_.norm,           cfg_.norm_eps,
                         cfg_.pre_norm, cfg_.parallel_block, cfg_.activation, cfg_.gated_ffn,
                         cfg_.bias,    cfg_.dropout};
  block.rotary = {cfg_.rotary_dim(), cfg_.rotary_interleaved, cfg_.rotary_base};
  block.alibi = cfg_.position == PositionKind::ALiBi;
  block.head_dim = cfg_.attn_head_dim;
  block.attention_scale = cfg_.scale_attention ? 0.0f : 1.0f;
  auto make_stack = [&](int64_t n, bool causal, bool cross, std::vector<std::unique_ptr<nn::TransformerBlock>>& out,
                        Stack& stack, Stack& layers, std::unique_ptr<nn::Norm>& final_norm,
                        std::unique_ptr<nn::Norm>& embed_norm, std::unique_ptr<nn::Embedding>& relative_bias,
                        const char* name) {
    block.causal = causal;
    block.cross = cross;
    if (cfg_.embed_norm) {
      embed_norm = std::make_unique<nn::Norm>(cfg_.norm, width, cfg_.norm_eps, cfg_.bias, init);
      stack.add("embed_norm", *embed_norm);
    }
    if (cfg_.position == PositionKind::RelativeBuckets) {
      relative_bias = std::make_unique<nn::Embedding>(cfg_.relative_buckets, cfg_.heads, 0.02f, init);
      stack.add("relative_bias", *relative_bias);
    }
    for (int64_t i = 0; i < (cfg_.share_layers ? 1 : n); ++i) {
      out.push_back(std::make_unique<nn::TransformerBlock>(block, init));
      layers.add(std::to_string(i), *out.back());
    }
    stack.add("layers", layers);
    if (cfg_.final_norm) {
      final_norm = std::make_unique<nn::Norm>(cfg_.norm, cfg_.d_model, cfg_.norm_eps, cfg_.bias, init);
      stack.add("final_norm", *final_norm);
    }
    add_module(name, stack);
  };
  if (has_encoder)
    make_stack(cfg_.enc_layers, false, false, encoder_, encoder_stack_, encoder_layers_, encoder_norm_,
               encoder_embed_norm_, encoder_relative_bias_, "encoder");
  if (has_decoder)
    make_stack(cfg_.dec_layers, true, has_encoder, decoder_, decoder_stack_, decoder_layers_, decoder_norm_,
               decoder_embed_norm_, decoder_relative_bias_, "decoder");
  if (cfg_.output_transform) {
    head_dense_ = std::make_unique<nn::Linear>(cfg_.d_model, width, true, init);
    head_norm_ = std::make_unique<nn::Norm>(cfg_.norm, width, cfg_.norm_eps, cfg_.bias, init);
    head_.add("dense", *head_dense_);
    head_.add("norm", *head_norm_);
    add_module("head", head_);
  }
  if (cfg_.output_head && !cfg_.tie_output) {
    lm_head_ = std::make_unique<nn::Linear>(cfg_.output_transform ? width : cfg_.d_model, cfg_.vocab, false, init);
    add_module("lm_head", *lm_head_);
  }
  if (cfg_.output_bias) output_bias_ = add_parameter("output_bias", init.constant({cfg_.vocab}, 0.0f));
}

Var Transformer::embed(const nn::Embedding& table, const nn::Embedding* positions, const nn::Norm* norm,
                       const Tensor& ids, const ForwardContext& ctx, int64_t first_position) const {
  TCAT_CHECK(ids.ndim() == 2, "token ids must be [batch, time], got {}", ids.desc());
  const int64_t T = ids.dim(1), end = first_position + T;
  TCAT_CHECK(end <= cfg_.max_positions, "sequence of {} tokens exceeds the model's {} positions", end,
             cfg_.max_positions);
  Var x = table.forward(ids);
  if (cfg_.scale_embeddings) x = ag::scale(x, std::sqrt(float(cfg_.d_model)));
  if (sinusoids_.defined()) {
    x = ag::add(x, Var(sinusoids_.slice(0, first_position, end)));
  } else if (positions) {
    std::vector<int64_t> pos(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) pos[size_t(i)] = first_position + i + cfg_.position_offset;
    x = ag::add(x, positions->forward(Tensor::from_ids(pos, {T})));
  }
  if (type_embed_) x = ag::add(x, type_embed_->forward(Tensor::from_ids({0}, {1})));
  if (norm) x = norm->forward(x);
  if (embed_proj_) x = embed_proj_->forward(x);
  if (ctx.training) x = ag::dropout(x, cfg_.dropout, *ctx.rng);
  return x;
}

Var Transformer::run_stack(const std::vector<std::unique_ptr<nn::TransformerBlock>>& layers, int64_t count,
                           const nn::Norm* final_norm, Var x, const Tensor* x_valid, const Var& memory,
                           const Tensor* memory_valid, const ForwardContext& ctx,
                           std::vector<Var>* hidden_states, const Var& position_bias) const {
  if (hidden_states) hidden_states->assign({x});
  for (int64_t i = 0; i < count; ++i) {
    x = layers[size_t(i) % layers.size()]->forward(x, x_valid, memory, memory_valid, ctx, position_bias);
    if (hidden_states) hidden_states->push_back(x);
  }
  if (final_norm) x = final_norm->forward(x);
  if (hidden_states) hidden_states->back() = x;
  return x;
}

Var Transformer::encode(const Tensor& src, const Tensor* src_valid, const ForwardContext& ctx,
                        std::vector<Var>* hidden_states) const {
  TCAT_CHECK(src_embed_, "this {} model has no encoder", cfg_.to_json()["layout"].get<std::string>());
  const int64_t S = src.dim(1);
  return run_stack(encoder_, cfg_.enc_layers, encoder_norm_.get(),
                   embed(*src_embed_, pos_embed_.get(), encoder_embed_norm_.get(), src, ctx), src_valid, Var(), nullptr,
                   ctx, hidden_states, position_bias(encoder_relative_bias_.get(), 0, S, S, true));
}

Var Transformer::decode(const Tensor& tgt, const Tensor* tgt_valid, const Var& memory, const Tensor* src_valid,
                        const ForwardContext& ctx, std::vector<Var>* hidden_states) const {
  TCAT_CHECK(!decoder_.empty(), "this encoder-only model has no decoder");
  const int64_t T = tgt.dim(1);
  return run_stack(decoder_, cfg_.dec_layers, decoder_norm_.get(),
                   embed(target_table(), target_positions(), decoder_embed_norm_.get(), tgt, ctx), tgt_valid, memory,
                   src_valid, ctx, hidden_states, position_bias(decoder_relative_bias_.get(), 0, T, T, false));
}

namespace {

// T5's bucket for a key `relative` positions after its query (negative: before it).
int64_t relative_bucket(int64_t relative, bool bidirectional, int64_t buckets, int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    buckets /= 2;
    if (relative > 0) bucket += buckets;
    relative = std::abs(relative);
  } else {
    relative = -std::min<int64_t>(relative, 0);
  }
  const int64_t max_exact = buckets / 2;
  if (relative < max_exact) return bucket + relative;
  // Logarithmic buckets up to max_distance, in float32 as the reference computes them.
  const float scaled = std::log(float(relative) / float(max_exact)) /
                       float(std::log(double(max_distance) / double(max_exact))) * float(buckets - max_exact);
  return bucket + std::min<int64_t>(max_exact + int64_t(scaled), buckets - 1);
}

}  // namespace

Var Transformer::position_bias(const nn::Embedding* table, int64_t first_query, int64_t queries, int64_t keys,
                               bool bidirectional) const {
  if (!table) return Var();
  std::vector<int64_t> buckets(size_t(queries * keys));
  for (int64_t i = 0; i < queries; ++i)
    for (int64_t j = 0; j < keys; ++j)
      buckets[size_t(i * keys + j)] =
          relative_bucket(j - (first_query + i), bidirectional, cfg_.relative_buckets, cfg_.relative_max_distance);
  const Var bias = table->forward(Tensor::from_ids(buckets, {queries, keys}));  // [queries, keys, heads]
  return ag::contiguous(ag::permute(bias, {2, 0, 1}));
}

Var Transformer::head_input(const Var& hidden) const {
  if (!cfg_.output_head)
    throw UsageError("this model has no output head (a base checkpoint such as BertModel or "
                     "ElectraForPreTraining): it gives hidden states only");
  Var h = cfg_.output_scale != 1.0f ? ag::scale(hidden, cfg_.output_scale) : hidden;
  if (head_dense_) h = head_norm_->forward(nn::activate(head_dense_->forward(h), cfg_.activation));
  return h;
}

Var Transformer::project(const Var& hidden) const {
  return ag::linear(head_input(hidden), output_weight(), output_bias_);
}

Var Transformer::forward(const Tensor& src, const Tensor& tgt_in, const ForwardContext& ctx) const {
  const Tensor src_valid = padding_mask(src, cfg_.pad_id);
  const Tensor tgt_valid = padding_mask(tgt_in, cfg_.pad_id);
  const Var memory = encode(src, &src_valid, ctx);
  return project(decode(tgt_in, &tgt_valid, memory, &src_valid, ctx));
}

void DecoderState::reorder(const std::vector<int64_t>& rows) {
  for (auto& layer : layers_) layer.self.reorder(rows);
  if (layers_.empty() || layers_.front().cross.rows() == 0) return;  // no memory
  // The memory row of each new row; groups of equal size that share one keep sharing it.
  const size_t n = rows.size();
  auto memory_row = [&](size_t i) { return rows[i] / rows_per_memory_; };
  size_t group = 1;
  while (group < n && memory_row(group) == memory_row(0)) ++group;
  bool uniform = n % group == 0;
  for (size_t i = 0; uniform && i < n; ++i) uniform = memory_row(i) == memory_row(i / group * group);
  if (!uniform) group = 1;
  std::vector<int64_t> sources(n / group);
  bool same = int64_t(sources.size()) == layers_.front().cross.rows();
  for (size_t j = 0; j < sources.size(); ++j) {
    sources[j] = memory_row(j * group);
    same = same && sources[j] == int64_t(j);
  }
  rows_per_memory_ = int64_t(group);
  if (same) return;
  for (auto& layer : layers_) layer.cross.reorder(sources);
  if (memory_valid_.defined()) memory_valid_ = nn::gather_rows(memory_valid_, sources, memory_valid_.dim(1));
}

DecoderState Transformer::start_decoding(const Var& memory, const Tensor* src_valid, int64_t capacity) const {
  TCAT_CHECK(cfg_.layout == Layout::EncoderDecoder, "start_decoding with a memory needs an encoder-decoder model");
  TCAT_CHECK(memory.defined() && memory.value().ndim() == 3 && memory.dim(2) == cfg_.d_model,
             "start_decoding: memory must be [batch, source, {}], got {}", cfg_.d_model,
             memory.defined() ? memory.desc() : "nothing");
  ag::NoGradGuard no_grad;
  const int64_t N = memory.dim(0), S = memory.dim(1);
  DecoderState state = empty_decoder_state(N, capacity, memory);
  if (src_valid) {
    TCAT_CHECK(src_valid->shape() == (Shape{N, S}), "start_decoding: source mask {} for memory {}",
               src_valid->desc(), memory.desc());
    state.memory_valid_ = src_valid->to(DType::U8).contiguous();
  }
  return state;
}

DecoderState Transformer::start_decoding(int64_t rows, int64_t capacity) const {
  TCAT_CHECK(cfg_.layout == Layout::DecoderOnly, "start_decoding without a memory needs a decoder-only model");
  TCAT_CHECK(rows >= 0, "start_decoding: {} rows", rows);
  return empty_decoder_state(rows, capacity, Var());
}

DecoderState Transformer::empty_decoder_state(int64_t rows, int64_t capacity, const Var& memory) const {
  DecoderState state;
  for (int64_t i = 0; i < cfg_.dec_layers; ++i)
    state.layers_.push_back(decoder_layer(i).start_cache(rows, std::min(capacity, cfg_.max_positions), memory));
  return state;
}

Tensor Transformer::decode_step(const Tensor& tokens, DecoderState& state) const {
  ag::NoGradGuard no_grad;
  const Var features(decode_step_features(tokens, state));
  return ag::linear(features, output_weight(), output_bias_).value();
}

Tensor Transformer::decode_step_features(const Tensor& tokens, DecoderState& state) const {
  TCAT_CHECK(int64_t(state.layers_.size()) == cfg_.dec_layers && !decoder_.empty(),
             "decode_step: the state has {} layers, the decoder {}", state.layers_.size(), cfg_.dec_layers);
  const Tensor ids = tokens.ndim() == 1 ? tokens.reshape({tokens.dim(0), 1}) : tokens;
  TCAT_CHECK(ids.ndim() == 2 && ids.dim(0) == state.rows() && ids.dim(1) >= 1,
             "decode_step: tokens {} for a state of {} rows", tokens.desc(), state.rows());
  ag::NoGradGuard no_grad;
  Var x = embed(target_table(), target_positions(), decoder_embed_norm_.get(), ids, ForwardContext{}, state.length());
  const Tensor* memory_valid = state.memory_valid_.defined() ? &state.memory_valid_ : nullptr;
  const int64_t first = state.length();
  const Var bias = position_bias(decoder_relative_bias_.get(), first, ids.dim(1), first + ids.dim(1), false);
  for (size_t i = 0; i < state.layers_.size(); ++i)
    x = decoder_layer(int64_t(i)).step(x, state.layers_[i], memory_valid, state.rows_per_memory_, bias);
  const int64_t T = ids.dim(1);
  if (T > 1) x = Var(x.value().slice(1, T - 1, T).contiguous());  // only the last position is projected
  if (decoder_norm_) x = decoder_norm_->forward(x);
  const Tensor features = head_input(x).value();
  return features.view({state.rows(), features.dim(-1)});
}

}  // namespace tcat::models
