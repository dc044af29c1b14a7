#include "nn/attention.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/attention.h"

namespace tcat::nn {

static int64_t checked_head_dim(const AttentionOptions& o) {
  const int64_t kvh = o.kv_heads ? o.kv_heads : o.heads;
  TCAT_CHECK(o.d_model > 0 && o.heads > 0 && (o.head_dim > 0 || o.d_model % o.heads == 0),
             "attention: {} heads do not divide d_model {}", o.heads, o.d_model);
  TCAT_CHECK(kvh > 0 && o.heads % kvh == 0, "attention: {} kv heads do not divide {} heads", kvh, o.heads);
  return o.head_dim > 0 ? o.head_dim : o.d_model / o.heads;
}

// For each i < count, copies `bytes` to and from the addresses target(i) returns ({to, from});
// large copies (beam search over big batches) are shared by both cores.
template <class Target>
static void copy_rows(size_t count, size_t bytes, const Target& target) {
#pragma omp parallel for if (count * bytes > (size_t(1) << 20))
  for (size_t i = 0; i < count; ++i) {
    const auto [to, from] = target(i);
    std::memcpy(to, from, bytes);
  }
}

Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& rows, int64_t steps) {
  TCAT_CHECK(t.ndim() >= 2 && t.is_contiguous(), "gather_rows: needs a contiguous [rows, time, ...] tensor, got {}",
             t.desc());
  TCAT_CHECK(steps >= 0 && steps <= t.dim(1), "gather_rows: {} steps of {}", steps, t.desc());
  Shape shape = t.shape();
  shape[0] = int64_t(rows.size());
  Tensor out = Tensor::empty(shape, t.dtype());
  const size_t row_bytes = size_t(t.strides()[0]) * dtype_size(t.dtype());
  const size_t copy_bytes = size_t(steps * t.strides()[1]) * dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < rows.size(); ++i)
    TCAT_CHECK(rows[i] >= 0 && rows[i] < t.dim(0), "gather_rows: row {} of {}", rows[i], t.desc());
  copy_rows(rows.size(), copy_bytes, [&](size_t i) {
    return std::pair(dst + i * row_bytes, src + size_t(rows[i]) * row_bytes);
  });
  return out;
}

// Capacities are powers of two: batches of similar lengths then ask for buffers of the same size,
// which the caching allocator hands back already in memory. With the exact capacity, each batch
// of a length-sorted run got a fresh buffer whose pages faulted in one step at a time (2-3% of a
// batch-32 beam-4 translation, on the thread the other one waits for).
KVCache::KVCache(int64_t rows, int64_t capacity, int64_t kv_width)
    : buffer_(Tensor::empty({rows, int64_t(std::bit_ceil(uint64_t(std::max<int64_t>(capacity, 1)))), 2 * kv_width})) {}

static Tensor checked_kv(const Tensor& kv) {
  TCAT_CHECK(kv.ndim() == 3 && kv.dim(2) % 2 == 0 && kv.dtype() == DType::F32,
             "KVCache: keys and values must be f32 [rows, steps, 2 * kv_width], got {}", kv.desc());
  return kv.contiguous();
}

KVCache::KVCache(Tensor kv) : buffer_(checked_kv(kv)), length_(buffer_.dim(1)) {}

void KVCache::append(const Tensor& src, int64_t column) {
  TCAT_CHECK(buffer_.defined(), "KVCache::append on a cache without a buffer");
  const int64_t width = buffer_.dim(2), T = src.dim(1);
  TCAT_CHECK(src.ndim() == 3 && src.is_contiguous() && src.dtype() == DType::F32 && src.dim(0) == rows() &&
                 column + width <= src.dim(2),
             "KVCache::append: {} columns from {} at column {} into {} rows", width, src.desc(), column, rows());
  if (length_ + T > capacity()) {
    Tensor grown = Tensor::empty({rows(), std::max(2 * capacity(), length_ + T), width});
    if (length_ > 0) grown.slice(1, 0, length_).copy_from(buffer_.slice(1, 0, length_));
    buffer_ = grown;
  }
  const float* s = src.data<float>();
  float* d = buffer_.data<float>();
  const int64_t cap = capacity(), src_width = src.dim(2);
  for (int64_t r = 0; r < rows(); ++r)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(d + (r * cap + length_ + t) * width, s + (r * T + t) * src_width + column,
                  size_t(width) * sizeof(float));
  length_ += T;
}

void KVCache::reorder(const std::vector<int64_t>& rows) {
  const int64_t n = int64_t(rows.size()), old = this->rows();
  if (n > old) {  // more rows than before (beams spreading out): a new buffer
    buffer_ = gather_rows(buffer_, rows, length_);
    return;
  }
  // In place, writing only the rows whose source differs (beam search keeps many rows where they
  // are); a source that is itself written over is saved first.
  std::vector<int64_t> changed, saved_at(size_t(old), -1), saved_rows;
  for (int64_t i = 0; i < n; ++i) {
    TCAT_CHECK(rows[size_t(i)] >= 0 && rows[size_t(i)] < old, "KVCache::reorder: row {} of {}", rows[size_t(i)], old);
    if (rows[size_t(i)] != i) changed.push_back(i);
  }
  for (int64_t i : changed) {
    const int64_t source = rows[size_t(i)];
    const bool overwritten = source < n && rows[size_t(source)] != source;
    if (overwritten && saved_at[size_t(source)] < 0) {
      saved_at[size_t(source)] = int64_t(saved_rows.size());
      saved_rows.push_back(source);
    }
  }
  const Tensor saved = saved_rows.empty() ? Tensor() : gather_rows(buffer_, saved_rows, length_);
  const size_t row_bytes = size_t(buffer_.strides()[0]) * sizeof(float);
  const size_t copy_bytes = size_t(length_ * buffer_.strides()[1]) * sizeof(float);
  auto* data = static_cast<char*>(buffer_.raw_data());
  const auto* saved_data = saved.defined() ? static_cast<const char*>(saved.raw_data()) : nullptr;
  copy_rows(changed.size(), copy_bytes, [&](size_t c) {
    const int64_t i = changed[c], source = rows[size_t(i)], slot = saved_at[size_t(source)];
    const char* from = slot >= 0 ? saved_data + size_t(slot) * row_bytes : data + size_t(source) * row_bytes;
    return std::pair(data + size_t(i) * row_bytes, from);
  });
  if (n < old) buffer_ = buffer_.slice(0, 0, n);
}

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& o, const Init& init)
    : heads_(o.heads),
      kv_heads_(o.kv_heads ? o.kv_heads : o.heads),
      head_dim_(checked_head_dim(o)),
      scale_(o.scale > 0 ? o.scale : 1.0f / std::sqrt(float(head_dim_))),
      rotary_(o.rotary),
      out_(o.heads * head_dim_, o.d_model, o.bias, init) {
  const int64_t q_width = heads_ * head_dim_, kv_width = kv_heads_ * head_dim_;
  TCAT_CHECK(!o.cross || (rotary_.rotary_dim == 0 && !o.alibi), "attention: cross-attention takes no position scheme");
  TCAT_CHECK(rotary_.rotary_dim == 0 || (rotary_.rotary_dim % 2 == 0 && rotary_.rotary_dim <= head_dim_),
             "attention: rotary_dim {} must be even and at most head_dim {}", rotary_.rotary_dim, head_dim_);
  if (o.alibi) {
    const std::vector<float> slopes = kernels::alibi_slopes(heads_);
    alibi_slopes_ = Tensor::from_vector(slopes, {heads_});
  }
  if (o.cross) {
    q_ = std::make_unique<Linear>(o.d_model, q_width, o.bias, init);
    kv_ = std::make_unique<Linear>(o.d_model, 2 * kv_width, o.bias, init);
    add_module("q", *q_);
    add_module("kv", *kv_);
  } else {
    qkv_ = std::make_unique<Linear>(o.d_model, q_width + 2 * kv_width, o.bias, init);
    add_module("qkv", *qkv_);
  }
  add_module("out", out_);
}

Var MultiHeadAttention::self_attention(const Var& x, bool causal, const Tensor* key_valid,
                                       const Var& position_bias) const {
  TCAT_CHECK(qkv_, "self_attention called on a cross-attention module");
  const Var qkv = rotate(qkv_->forward(x), 0);
  const int64_t kv_width = kv_heads_ * head_dim_, q_width = heads_ * head_dim_;
  if (position_bias.defined())
    return out_.forward(biased_attention(ag::slice(qkv, 2, 0, q_width), ag::slice(qkv, 2, q_width, q_width + kv_width),
                                         ag::slice(qkv, 2, q_width + kv_width, q_width + 2 * kv_width), position_bias,
                                         causal, key_valid));
  ag::AttentionSpec spec{heads_, kv_heads_, head_dim_, causal, key_valid, scale_,
                         alibi_slopes_.defined() ? &alibi_slopes_ : nullptr};
  Var y = ag::attention({qkv, 0}, {qkv, q_width}, {qkv, q_width + kv_width}, spec);
  return out_.forward(y);
}

Var MultiHeadAttention::cross_attention(const Var& x, const Var& memory, const Tensor* memory_valid) const {
  TCAT_CHECK(q_, "cross_attention called on a self-attention module");
  const Var q = q_->forward(x);
  const Var kv = kv_->forward(memory);
  ag::AttentionSpec spec{heads_, kv_heads_, head_dim_, false, memory_valid, scale_};
  Var y = ag::attention({q, 0}, {kv, 0}, {kv, kv_heads_ * head_dim_}, spec);
  return out_.forward(y);
}

Var MultiHeadAttention::self_attention_step(const Var& x, KVCache& cache, const Var& position_bias) const {
  TCAT_CHECK(qkv_, "self_attention_step called on a cross-attention module");
  TCAT_CHECK(!ag::grad_enabled(), "self_attention_step is inference only (use a NoGradGuard)");
  TCAT_CHECK(cache.kv_width() == kv_heads_ * head_dim_ && cache.rows() == x.dim(0),
             "self_attention_step: cache of {} rows x {} kv columns for input {} ({} kv columns)", cache.rows(),
             cache.kv_width(), x.desc(), kv_heads_ * head_dim_);
  const Tensor qkv = rotate(qkv_->forward(x), cache.length()).value();
  cache.append(qkv, heads_ * head_dim_);
  if (position_bias.defined()) {
    const int64_t q_width = heads_ * head_dim_, kv_width = kv_heads_ * head_dim_;
    const Tensor kv = cache.buffer().slice(1, 0, cache.length());
    return out_.forward(biased_attention(Var(qkv.slice(2, 0, q_width).contiguous()),
                                         Var(kv.slice(2, 0, kv_width).contiguous()),
                                         Var(kv.slice(2, kv_width, 2 * kv_width).contiguous()), position_bias, true,
                                         nullptr));
  }
  return attend_cached(qkv, cache, qkv.dim(0), true, nullptr);
}

KVCache MultiHeadAttention::memory_cache(const Var& memory) const {
  TCAT_CHECK(kv_, "memory_cache called on a self-attention module");
  return KVCache(kv_->forward(memory).value());
}

Var MultiHeadAttention::cross_attention_step(const Var& x, const KVCache& memory, const Tensor* memory_valid,
                                             int64_t rows_per_memory) const {
  TCAT_CHECK(q_, "cross_attention_step called on a self-attention module");
  TCAT_CHECK(!ag::grad_enabled(), "cross_attention_step is inference only (use a NoGradGuard)");
  TCAT_CHECK(rows_per_memory >= 1 && x.dim(0) == memory.rows() * rows_per_memory,
             "cross_attention_step: {} rows cannot share {} memory rows {} at a time", x.dim(0), memory.rows(),
             rows_per_memory);
  return attend_cached(q_->forward(x).value(), memory, memory.rows(), false, memory_valid);
}

Var MultiHeadAttention::attend_cached(const Tensor& q, const KVCache& cache, int64_t batch, bool causal,
                                      const Tensor* key_valid) const {
  const int64_t N = q.dim(0), T = q.dim(1), width = q.dim(2), kv_width = kv_heads_ * head_dim_;
  TCAT_CHECK(q.is_contiguous() && q.dtype() == DType::F32 && cache.kv_width() == kv_width && batch == cache.rows(),
             "attention step: query {} against a cache of {} rows x {} kv columns ({} expected)", q.desc(),
             cache.rows(), cache.kv_width(), kv_width);
  const int64_t q_len = N * T / std::max<int64_t>(batch, 1), kv_len = cache.length();
  if (key_valid) {
    TCAT_CHECK(key_valid->dtype() == DType::U8 && key_valid->is_contiguous() &&
                   key_valid->shape() == (Shape{batch, kv_len}),
               "attention step: key mask {} for {} rows of {} keys", key_valid->desc(), batch, kv_len);
  }
  const int64_t out_width = heads_ * head_dim_;
  Tensor out = Tensor::empty({N, T, out_width});
  const Tensor& kv = cache.buffer();
  const int64_t kv_stride = kv.dim(1) * kv.dim(2);
  float* base = N ? kv.data<float>() : nullptr;
  kernels::attention_forward(
      {batch, heads_, q_len, kv_len, head_dim_, kv_heads_}, {q.data<float>(), q_len * width, width, head_dim_},
      {base, kv_stride, 2 * kv_width, head_dim_}, {base ? base + kv_width : nullptr, kv_stride, 2 * kv_width, head_dim_},
      {out.data<float>(), q_len * out_width, out_width, head_dim_},
      {causal, key_valid ? key_valid->data<uint8_t>() : nullptr,
       alibi_slopes_.defined() ? alibi_slopes_.data<float>() : nullptr},
      scale_, nullptr);
  return out_.forward(Var(out));
}

Var MultiHeadAttention::biased_attention(const Var& q, const Var& k, const Var& v, const Var& position_bias,
                                         bool causal, const Tensor* key_valid) const {
  TCAT_CHECK(kv_heads_ == heads_, "attention with a position bias needs as many kv heads as heads ({} vs {})",
             kv_heads_, heads_);
  const int64_t B = q.dim(0), T = q.dim(1), S = k.dim(1);
  TCAT_CHECK(position_bias.value().shape() == (Shape{heads_, T, S}), "attention: position bias {} for {} heads, {} x {}",
             position_bias.desc(), heads_, T, S);
  auto split_heads = [&](const Var& x, int64_t len) {  // [B, len, heads * head_dim] -> [B, heads, len, head_dim]
    return ag::contiguous(ag::permute(ag::reshape(ag::contiguous(x), {B, len, heads_, head_dim_}), {0, 2, 1, 3}));
  };
  Var scores = ag::matmul(split_heads(q, T), split_heads(k, S), false, true);  // [B, heads, T, S]
  if (scale_ != 1.0f) scores = ag::scale(scores, scale_);
  scores = ag::add(scores, position_bias);
  if (causal || key_valid) {
    Tensor mask = Tensor::zeros({B, 1, T, S});
    float* m = mask.data<float>();
    const uint8_t* valid = key_valid ? key_valid->contiguous().data<uint8_t>() : nullptr;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < S; ++j)
          if ((causal && j > S - T + i) || (valid && !valid[b * S + j]))
            m[(b * T + i) * S + j] = -std::numeric_limits<float>::infinity();
    scores = ag::add(scores, Var(mask));
  }
  const Var y = ag::matmul(ag::softmax(scores), split_heads(v, S));  // [B, heads, T, head_dim]
  return ag::reshape(ag::contiguous(ag::permute(y, {0, 2, 1, 3})), {B, T, heads_ * head_dim_});
}

Var MultiHeadAttention::rotate(const Var& qkv, int64_t first_position) const {
  if (rotary_.rotary_dim == 0) return qkv;
  const int64_t rotated_heads = heads_ + kv_heads_, dim = head_dim_;  // Q heads then K heads
  const kernels::RotarySpec spec = rotary_;
  if (!ag::grad_enabled()) {  // inference: the projection output is ours to turn in place
    Tensor value = qkv.value();
    kernels::rotary_inplace(value, 0, rotated_heads, dim, spec, first_position, false);
    return qkv;
  }
  Tensor out = qkv.value().clone();
  kernels::rotary_inplace(out, 0, rotated_heads, dim, spec, first_position, false);
  return ag::record("rotary", out, {qkv}, [=](const Tensor& g, ag::GradSink& sink) {
    Tensor grad = g.contiguous().clone();  // a rotation's transpose is the opposite rotation
    kernels::rotary_inplace(grad, 0, rotated_heads, dim, spec, first_position, true);
    sink.add(0, std::move(grad));
  });
}

}  // namespace tcat::nn
