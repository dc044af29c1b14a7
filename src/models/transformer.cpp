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

Transformer::Transformer(const ArchConfig& config, Rng& rng) : cfg_(config) {
  cfg_.validate();
  const float emb_std = 1.0f / std::sqrt(float(cfg_.d_model));
  const bool has_encoder = cfg_.layout != Layout::DecoderOnly;
  const bool has_decoder = cfg_.layout != Layout::EncoderOnly;

  if (has_encoder) {
    src_embed_ = std::make_unique<nn::Embedding>(cfg_.vocab, cfg_.d_model, emb_std, rng);
    add_module(has_decoder && cfg_.share_embeddings ? "embed" : "src_embed", *src_embed_);
  }
  if (has_decoder) {
    if (has_encoder && cfg_.share_embeddings) {
      tgt_embed_ = nullptr;  // decode() uses src_embed_
    } else {
      tgt_embed_ = std::make_unique<nn::Embedding>(cfg_.vocab, cfg_.d_model, emb_std, rng);
      add_module(has_encoder ? "tgt_embed" : "embed", *tgt_embed_);
    }
  }
  if (cfg_.position == PositionKind::Learned) {
    pos_embed_ = std::make_unique<nn::Embedding>(cfg_.max_positions + cfg_.position_offset, cfg_.d_model, 0.02f, rng);
    add_module("pos_embed", *pos_embed_);
  } else if (cfg_.position == PositionKind::Sinusoidal) {
    sinusoids_ = sinusoidal_table(cfg_.max_positions, cfg_.d_model);
  }

  nn::BlockOptions block{cfg_.d_model, cfg_.heads,     cfg_.kv_heads,       cfg_.d_ff,
                         false,        false,          cfg_.norm,           cfg_.norm_eps,
                         cfg_.pre_norm, cfg_.parallel_block, cfg_.activation, cfg_.gated_ffn,
                         cfg_.bias,    cfg_.dropout};
  block.rotary = {cfg_.rotary_dim(), cfg_.rotary_interleaved, cfg_.rotary_base};
  block.alibi = cfg_.position == PositionKind::ALiBi;
  auto make_stack = [&](int64_t n, bool causal, bool cross, std::vector<std::unique_ptr<nn::TransformerBlock>>& out,
                        Stack& stack, Stack& layers, std::unique_ptr<nn::Norm>& final_norm,
                        std::unique_ptr<nn::Norm>& embed_norm, const char* name) {
    block.causal = causal;
    block.cross = cross;
    if (cfg_.embed_norm) {
      embed_norm = std::make_unique<nn::Norm>(cfg_.norm, cfg_.d_model, cfg_.norm_eps, cfg_.bias);
      stack.add("embed_norm", *embed_norm);
    }
    for (int64_t i = 0; i < n; ++i) {
      out.push_back(std::make_unique<nn::TransformerBlock>(block, rng));
      layers.add(std::to_string(i), *out.back());
    }
    stack.add("layers", layers);
    if (cfg_.final_norm) {
      final_norm = std::make_unique<nn::Norm>(cfg_.norm, cfg_.d_model, cfg_.norm_eps, cfg_.bias);
      stack.add("final_norm", *final_norm);
    }
    add_module(name, stack);
  };
  if (has_encoder)
    make_stack(cfg_.enc_layers, false, false, encoder_, encoder_stack_, encoder_layers_, encoder_norm_,
               encoder_embed_norm_, "encoder");
  if (has_decoder)
    make_stack(cfg_.dec_layers, true, has_encoder, decoder_, decoder_stack_, decoder_layers_, decoder_norm_,
               decoder_embed_norm_, "decoder");
  if (!cfg_.tie_output) {
    lm_head_ = std::make_unique<nn::Linear>(cfg_.d_model, cfg_.vocab, false, rng);
    add_module("lm_head", *lm_head_);
  }
}

Var Transformer::embed(const nn::Embedding& table, const nn::Norm* norm, const Tensor& ids,
                       const ForwardContext& ctx, int64_t first_position) const {
  TCAT_CHECK(ids.ndim() == 2, "token ids must be [batch, time], got {}", ids.desc());
  const int64_t T = ids.dim(1), end = first_position + T;
  TCAT_CHECK(end <= cfg_.max_positions, "sequence of {} tokens exceeds the model's {} positions", end,
             cfg_.max_positions);
  Var x = table.forward(ids);
  if (cfg_.scale_embeddings) x = ag::scale(x, std::sqrt(float(cfg_.d_model)));
  if (cfg_.position == PositionKind::Sinusoidal) {
    x = ag::add(x, Var(sinusoids_.slice(0, first_position, end)));
  } else if (cfg_.position == PositionKind::Learned) {
    std::vector<int64_t> pos(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) pos[size_t(i)] = first_position + i + cfg_.position_offset;
    x = ag::add(x, pos_embed_->forward(Tensor::from_ids(pos, {T})));
  }
  if (norm) x = norm->forward(x);
  if (ctx.training) x = ag::dropout(x, cfg_.dropout, *ctx.rng);
  return x;
}

Var Transformer::run_stack(const std::vector<std::unique_ptr<nn::TransformerBlock>>& layers,
                           const nn::Norm* final_norm, Var x, const Tensor* x_valid, const Var& memory,
                           const Tensor* memory_valid, const ForwardContext& ctx,
                           std::vector<Var>* hidden_states) const {
  if (hidden_states) hidden_states->assign({x});
  for (const auto& layer : layers) {
    x = layer->forward(x, x_valid, memory, memory_valid, ctx);
    if (hidden_states) hidden_states->push_back(x);
  }
  if (final_norm) x = final_norm->forward(x);
  if (hidden_states) hidden_states->back() = x;
  return x;
}

Var Transformer::encode(const Tensor& src, const Tensor* src_valid, const ForwardContext& ctx,
                        std::vector<Var>* hidden_states) const {
  TCAT_CHECK(src_embed_, "this {} model has no encoder", cfg_.to_json()["layout"].get<std::string>());
  return run_stack(encoder_, encoder_norm_.get(), embed(*src_embed_, encoder_embed_norm_.get(), src, ctx),
                   src_valid, Var(), nullptr, ctx, hidden_states);
}

Var Transformer::decode(const Tensor& tgt, const Tensor* tgt_valid, const Var& memory, const Tensor* src_valid,
                        const ForwardContext& ctx, std::vector<Var>* hidden_states) const {
  TCAT_CHECK(!decoder_.empty(), "this encoder-only model has no decoder");
  return run_stack(decoder_, decoder_norm_.get(), embed(target_table(), decoder_embed_norm_.get(), tgt, ctx),
                   tgt_valid, memory, src_valid, ctx, hidden_states);
}

Var Transformer::project(const Var& hidden) const {
  if (lm_head_) return lm_head_->forward(hidden);
  return ag::linear(hidden, target_table().weight, Var());
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
  DecoderState state;
  for (const auto& layer : decoder_)
    state.layers_.push_back(layer->start_cache(N, std::min(capacity, cfg_.max_positions), memory));
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
  DecoderState state;
  for (const auto& layer : decoder_)
    state.layers_.push_back(layer->start_cache(rows, std::min(capacity, cfg_.max_positions), Var()));
  return state;
}

Tensor Transformer::decode_step(const Tensor& tokens, DecoderState& state) const {
  TCAT_CHECK(state.layers_.size() == decoder_.size() && !decoder_.empty(),
             "decode_step: the state has {} layers, the decoder {}", state.layers_.size(), decoder_.size());
  const Tensor ids = tokens.ndim() == 1 ? tokens.reshape({tokens.dim(0), 1}) : tokens;
  TCAT_CHECK(ids.ndim() == 2 && ids.dim(0) == state.rows() && ids.dim(1) >= 1,
             "decode_step: tokens {} for a state of {} rows", tokens.desc(), state.rows());
  ag::NoGradGuard no_grad;
  Var x = embed(target_table(), decoder_embed_norm_.get(), ids, ForwardContext{}, state.length());
  const Tensor* memory_valid = state.memory_valid_.defined() ? &state.memory_valid_ : nullptr;
  for (size_t i = 0; i < decoder_.size(); ++i)
    x = decoder_[i]->step(x, state.layers_[i], memory_valid, state.rows_per_memory_);
  const int64_t T = ids.dim(1);
  if (T > 1) x = Var(x.value().slice(1, T - 1, T).contiguous());  // only the last position is projected
  if (decoder_norm_) x = decoder_norm_->forward(x);
  return project(x).value().view({state.rows(), cfg_.vocab});
}

}  // namespace tcat::models
