#include "autograd/ops.h"

#include <cmath>
#include <numeric>
#include <optional>

#include "kernels/attention.h"

namespace tcat::ag {
namespace {

thread_local kernels::MatmulPrecision g_precision = kernels::MatmulPrecision::F32;

// Gradient buffer for a parameter-like input: the leaf's own accumulator when offered, else a
// fresh zero tensor that is handed to the sink once filled.
struct ParamGrad {
  GradSink& sink;
  size_t input;
  Tensor* target = nullptr;
  Tensor owned;

  ParamGrad(GradSink& s, size_t i, const Shape& shape) : sink(s), input(i) {
    if (!sink.needs(i)) return;
    target = sink.accumulator(i);
    if (!target) {
      owned = Tensor::zeros(shape);
      target = &owned;
    }
  }
  bool active() const { return target != nullptr; }
  ~ParamGrad() {
    if (owned.defined()) sink.add(input, std::move(owned));
  }
};

Tensor to_precision(const Tensor& t, kernels::MatmulPrecision p) {
  return p == kernels::MatmulPrecision::BF16 ? t.to(DType::BF16) : t.to(DType::F32);
}

}  // namespace

// ---------------------------------------------------------------- arithmetic

Var add(const Var& a, const Var& b) {
  const Shape as = a.shape(), bs = b.shape();
  return record("add", kernels::add(a.value(), b.value()), {a, b}, [as, bs](const Tensor& g, GradSink& s) {
    if (s.needs(0)) s.add(0, kernels::sum_to_shape(g, as));
    if (s.needs(1)) s.add(1, kernels::sum_to_shape(g, bs));
  });
}

Var sub(const Var& a, const Var& b) {
  const Shape as = a.shape(), bs = b.shape();
  return record("sub", kernels::sub(a.value(), b.value()), {a, b}, [as, bs](const Tensor& g, GradSink& s) {
    if (s.needs(0)) s.add(0, kernels::sum_to_shape(g, as));
    if (s.needs(1)) s.add(1, kernels::scale(kernels::sum_to_shape(g, bs), -1.0f));
  });
}

Var mul(const Var& a, const Var& b) {
  const Tensor av = a.value(), bv = b.value();
  return record("mul", kernels::mul(av, bv), {a, b}, [av, bv](const Tensor& g, GradSink& s) {
    if (s.needs(0)) s.add(0, kernels::sum_to_shape(kernels::mul(g, bv), av.shape()));
    if (s.needs(1)) s.add(1, kernels::sum_to_shape(kernels::mul(g, av), bv.shape()));
  });
}

Var scale(const Var& a, float f) {
  return record("scale", kernels::scale(a.value(), f), {a},
                [f](const Tensor& g, GradSink& s) { s.add(0, kernels::scale(g, f)); });
}

Var sum(const Var& a) {
  const Shape shape = a.shape();
  return record("sum", kernels::sum_all(a.value()), {a},
                [shape](const Tensor& g, GradSink& s) { s.add(0, Tensor::full(shape, g.item())); });
}

Var mean(const Var& a) {
  const float n = float(std::max<int64_t>(a.value().numel(), 1));
  return scale(sum(a), 1.0f / n);
}

// ---------------------------------------------------------------- views

Var reshape(const Var& a, const Shape& shape) {
  const Shape original = a.shape();
  return record("reshape", a.value().reshape(shape), {a},
                [original](const Tensor& g, GradSink& s) { s.add(0, g.reshape(original)); });
}

Var transpose(const Var& a, int d0, int d1) {
  return record("transpose", a.value().transpose(d0, d1), {a},
                [d0, d1](const Tensor& g, GradSink& s) { s.add(0, g.transpose(d0, d1)); });
}

Var permute(const Var& a, const std::vector<int>& order) {
  Tensor out = a.value().permute(order);
  std::vector<int> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[size_t(a.value().wrap_dim(order[i]))] = int(i);
  return record("permute", out, {a}, [inverse](const Tensor& g, GradSink& s) { s.add(0, g.permute(inverse)); });
}

Var slice(const Var& a, int dim, int64_t start, int64_t end) {
  const Shape shape = a.shape();
  return record("slice", a.value().slice(dim, start, end), {a}, [=](const Tensor& g, GradSink& s) {
    Tensor full = Tensor::zeros(shape);
    full.slice(dim, start, end).copy_from(g);
    s.add(0, full);
  });
}

Var expand(const Var& a, const Shape& shape) {
  const Shape original = a.shape();
  return record("expand", a.value().expand(shape), {a},
                [original](const Tensor& g, GradSink& s) { s.add(0, kernels::sum_to_shape(g, original)); });
}

Var contiguous(const Var& a) {
  return record("contiguous", a.value().contiguous(), {a}, [](const Tensor& g, GradSink& s) { s.add(0, g); });
}

// ---------------------------------------------------------------- matrix products

kernels::MatmulPrecision matmul_precision() { return g_precision; }
MatmulPrecisionGuard::MatmulPrecisionGuard(kernels::MatmulPrecision p) : previous_(g_precision) { g_precision = p; }
MatmulPrecisionGuard::~MatmulPrecisionGuard() { g_precision = previous_; }

Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  const auto p = g_precision;
  const Tensor av = to_precision(a.value(), p), bv = to_precision(b.value(), p);
  const Shape as = a.shape(), bs = b.shape();
  return record("matmul", kernels::matmul(av, bv, ta, tb), {a, b}, [=](const Tensor& g32, GradSink& s) {
    const Tensor g = to_precision(g32, p);
    if (s.needs(0)) {
      Tensor ga = ta ? kernels::matmul(bv, g, tb, true) : kernels::matmul(g, bv, false, !tb);
      s.add(0, kernels::sum_to_shape(ga, as));
    }
    if (s.needs(1)) {
      Tensor gb = tb ? kernels::matmul(g, av, true, ta) : kernels::matmul(av, g, !ta, false);
      s.add(1, kernels::sum_to_shape(gb, bs));
    }
  });
}

Var linear(const Var& x, const Var& w, const Var& bias) {
  const auto p = g_precision;
  TCAT_CHECK(w.value().ndim() == 2, "linear: weight {} must be 2-D", w.desc());
  const int64_t N = w.dim(0), K = w.dim(1);
  TCAT_CHECK(x.value().ndim() >= 1 && x.dim(-1) == K, "linear: input {} does not match weight {}", x.desc(), w.desc());
  // Saved operands are kept in the GEMM precision, so the backward converts nothing again.
  const Tensor xv = to_precision(x.value(), p).contiguous();
  // Weights stored for inference (nn::store_weights: bf16 under fp32 products, or int8) reach the
  // kernel as they are: it widens bf16 and multiplies int8 in int8.
  const DType stored = w.value().dtype();
  TCAT_CHECK(stored != DType::I8 || !grad_enabled(), "linear: int8 weight {} is for inference only (no gradients)",
             w.desc());
  const bool stored_for_inference =
      stored == DType::I8 || (p == kernels::MatmulPrecision::F32 && stored == DType::BF16 && !grad_enabled());
  const Tensor wv = stored_for_inference ? w.value().contiguous() : to_precision(w.value(), p).contiguous();
  const bool has_bias = bias.defined();
  Tensor out = kernels::linear(xv, wv, has_bias ? &bias.value() : nullptr, p);
  const Shape x_shape = x.shape();
  std::vector<Var> inputs{x, w};
  if (has_bias) inputs.push_back(bias);
  return record("linear", std::move(out), inputs, [=](const Tensor& g32, GradSink& s) {
    const int64_t R = xv.numel() / K;
    const Tensor g = to_precision(g32, p).contiguous();
    if (s.needs(0)) {
      Tensor dx = Tensor::empty(x_shape);
      if (p == kernels::MatmulPrecision::F32) {
        kernels::sgemm(false, false, R, K, N, 1.0f, g.data<float>(), N, wv.data<float>(), K, 0.0f, dx.data<float>(), K);
      } else {
        kernels::gemm_bf16(false, false, R, K, N, 1.0f, g.data<bf16>(), N, wv.data<bf16>(), K, 0.0f, dx.data<float>(),
                           K);
      }
      s.add(0, dx);
    }
    {
      ParamGrad dw(s, 1, {N, K});
      if (dw.active()) {
        float* out = dw.target->data<float>();
        if (p == kernels::MatmulPrecision::F32) {
          kernels::sgemm(true, false, N, K, R, 1.0f, g.data<float>(), N, xv.data<float>(), K, 1.0f, out, K);
        } else {
          kernels::gemm_bf16(true, false, N, K, R, 1.0f, g.data<bf16>(), N, xv.data<bf16>(), K, 1.0f, out, K);
        }
      }
    }
    if (has_bias) {
      ParamGrad db(s, 2, {N});
      if (db.active()) kernels::add_inplace(*db.target, kernels::sum_to_shape(g32, {N}));
    }
  });
}

// ---------------------------------------------------------------- activations, softmax, norms

Var relu(const Var& x) {
  const Tensor xv = x.value();
  return record("relu", kernels::relu(xv), {x},
                [xv](const Tensor& g, GradSink& s) { s.add(0, kernels::relu_backward(xv, g)); });
}

Var gelu(const Var& x, kernels::GeluApprox approx) {
  const Tensor xv = x.value();
  return record("gelu", kernels::gelu(xv, approx), {x},
                [xv, approx](const Tensor& g, GradSink& s) { s.add(0, kernels::gelu_backward(xv, g, approx)); });
}

Var silu(const Var& x) {
  const Tensor xv = x.value();
  return record("silu", kernels::silu(xv), {x},
                [xv](const Tensor& g, GradSink& s) { s.add(0, kernels::silu_backward(xv, g)); });
}

Var softmax(const Var& x) {
  Tensor y = kernels::softmax(x.value());
  return record("softmax", y, {x}, [y](const Tensor& g, GradSink& s) { s.add(0, kernels::softmax_backward(y, g)); });
}

Var log_softmax(const Var& x) {
  Tensor y = kernels::log_softmax(x.value());
  return record("log_softmax", y, {x},
                [y](const Tensor& g, GradSink& s) { s.add(0, kernels::log_softmax_backward(y, g)); });
}

Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps) {
  kernels::NormStats stats;
  const Tensor xv = x.value(), gv = gamma.value();
  Tensor y = kernels::layer_norm(xv, gv, beta.defined() ? beta.value() : Tensor(), eps, &stats);
  const bool has_beta = beta.defined();
  std::vector<Var> inputs{x, gamma};
  if (has_beta) inputs.push_back(beta);
  return record("layer_norm", std::move(y), inputs, [=](const Tensor& g, GradSink& s) {
    ParamGrad dgamma(s, 1, gv.shape());
    std::optional<ParamGrad> dbeta;
    if (has_beta) dbeta.emplace(s, 2, gv.shape());
    Tensor no_grad;
    Tensor& dg = dgamma.active() ? *dgamma.target : no_grad;
    Tensor no_grad_beta;
    Tensor& db = dbeta && dbeta->active() ? *dbeta->target : no_grad_beta;
    Tensor dx = kernels::layer_norm_backward(g, xv, gv, stats, dg, db);
    if (s.needs(0)) s.add(0, dx);
  });
}

Var rms_norm(const Var& x, const Var& gamma, float eps) {
  kernels::NormStats stats;
  const Tensor xv = x.value(), gv = gamma.value();
  Tensor y = kernels::rms_norm(xv, gv, eps, &stats);
  return record("rms_norm", std::move(y), {x, gamma}, [=](const Tensor& g, GradSink& s) {
    ParamGrad dgamma(s, 1, gv.shape());
    Tensor no_grad;
    Tensor dx = kernels::rms_norm_backward(g, xv, gv, stats, dgamma.active() ? *dgamma.target : no_grad);
    if (s.needs(0)) s.add(0, dx);
  });
}

Var dropout(const Var& x, float p, Rng& rng) {
  if (p == 0.0f) return x;
  Tensor mask;
  Tensor y = kernels::dropout(x.value(), p, rng, &mask);
  return record("dropout", std::move(y), {x},
                [mask, p](const Tensor& g, GradSink& s) { s.add(0, kernels::dropout_backward(g, mask, p)); });
}

// ---------------------------------------------------------------- embedding and loss

Var embedding(const Var& weight, const Tensor& ids) {
  const Shape ws = weight.shape();
  return record("embedding", kernels::embedding(weight.value(), ids), {weight}, [ws, ids](const Tensor& g, GradSink& s) {
    ParamGrad dw(s, 0, ws);
    if (dw.active()) kernels::embedding_backward(*dw.target, ids, g);
  });
}

Var cross_entropy(const Var& logits, const Tensor& targets, float label_smoothing, int64_t ignore_index) {
  TCAT_CHECK(logits.value().ndim() == 2, "cross_entropy: logits must be [rows, vocab], got {}", logits.desc());
  auto saved = std::make_shared<kernels::CrossEntropySaved>();
  const float loss = kernels::cross_entropy(logits.value(), targets, label_smoothing, ignore_index, saved.get());
  Tensor out = Tensor::full({}, loss);
  return record("cross_entropy", out, {logits}, [=](const Tensor& g, GradSink& s) {
    s.add(0, kernels::cross_entropy_backward(*saved, targets, label_smoothing, ignore_index, g.item()));
  });
}

// ---------------------------------------------------------------- attention

Var attention(const AttentionOperand& q, const AttentionOperand& k, const AttentionOperand& v,
              const AttentionSpec& spec) {
  const int64_t H = spec.heads, KVH = spec.kv_heads ? spec.kv_heads : spec.heads, D = spec.head_dim;
  TCAT_CHECK(H > 0 && D > 0 && H % KVH == 0, "attention: {} heads cannot share {} kv heads", H, KVH);
  const Tensor qv = q.source.value(), kv = k.source.value(), vv = v.source.value();
  for (const auto* t : {&qv, &kv, &vv}) {
    TCAT_CHECK(t->ndim() == 3 && t->is_contiguous() && t->dtype() == DType::F32,
               "attention: operands must be contiguous f32 [batch, time, width], got {}", t->desc());
  }
  const int64_t B = qv.dim(0), Tq = qv.dim(1), Tk = kv.dim(1);
  TCAT_CHECK(kv.dim(0) == B && vv.dim(0) == B && vv.dim(1) == Tk, "attention: q {}, k {}, v {} disagree on batch/time",
             qv.desc(), kv.desc(), vv.desc());
  TCAT_CHECK(q.column + H * D <= qv.dim(2) && k.column + KVH * D <= kv.dim(2) && v.column + KVH * D <= vv.dim(2),
             "attention: {} heads x {} dims do not fit q {}, k {}, v {} at columns {}, {}, {}", H, D, qv.desc(),
             kv.desc(), vv.desc(), q.column, k.column, v.column);
  Tensor key_valid;
  if (spec.key_valid) {
    key_valid = spec.key_valid->to(DType::U8).contiguous();
    TCAT_CHECK(key_valid.shape() == (Shape{B, Tk}), "attention: key mask {} for {} sequences of {} keys",
               key_valid.desc(), B, Tk);
  }
  Tensor slopes;
  if (spec.alibi_slopes) {
    slopes = spec.alibi_slopes->to(DType::F32).contiguous();
    TCAT_CHECK(slopes.shape() == (Shape{H}), "attention: ALiBi slopes {} for {} heads", slopes.desc(), H);
  }
  const float* slope_data = slopes.defined() ? slopes.data<float>() : nullptr;
  const kernels::AttentionShape shape{B, H, Tq, Tk, D, KVH};
  const float scale = spec.scale != 0 ? spec.scale : 1.0f / std::sqrt(float(D));
  auto view = [D](const Tensor& t, int64_t column) {
    return kernels::HeadView{t.data<float>() + column, t.dim(1) * t.dim(2), t.dim(2), D};
  };
  Tensor out = Tensor::empty({B, Tq, H * D});
  Tensor lse = Tensor::empty({B, H, Tq});
  kernels::AttentionMask mask{spec.causal, key_valid.defined() ? key_valid.data<uint8_t>() : nullptr, slope_data};
  kernels::attention_forward(shape, view(qv, q.column), view(kv, k.column), view(vv, v.column), view(out, 0), mask,
                             scale, lse.data<float>());

  // Q, K and V often come from one fused projection: give each distinct source one gradient.
  std::vector<Var> inputs;
  auto input_index = [&inputs](const Var& src) {
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].impl() == src.impl()) return i;
    inputs.push_back(src);
    return inputs.size() - 1;
  };
  const size_t qi = input_index(q.source), ki = input_index(k.source), vi = input_index(v.source);
  const int64_t qc = q.column, kc = k.column, vc = v.column;
  const bool causal = spec.causal;
  std::vector<Shape> shapes;
  for (const Var& in : inputs) shapes.push_back(in.shape());
  return record("attention", out, inputs, [=](const Tensor& g, GradSink& s) {
    std::vector<Tensor> grads(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) grads[i] = Tensor::zeros(shapes[i]);
    const Tensor dout = g.contiguous();
    kernels::AttentionMask m{causal, key_valid.defined() ? key_valid.data<uint8_t>() : nullptr,
                             slopes.defined() ? slopes.data<float>() : nullptr};
    kernels::attention_backward(shape, view(qv, qc), view(kv, kc), view(vv, vc), view(out, 0), view(dout, 0),
                                lse.data<float>(), m, scale, view(grads[qi], qc), view(grads[ki], kc),
                                view(grads[vi], vc));
    for (size_t i = 0; i < grads.size(); ++i)
      if (s.needs(i)) s.add(i, std::move(grads[i]));
  });
}

}  // namespace tcat::ag
