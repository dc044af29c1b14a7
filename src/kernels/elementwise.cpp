// Element-wise arithmetic with numpy broadcasting, its backward (sum_to_shape), and whole-tensor
// reductions.
#include <bit>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "kernels/ops_common.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {

using detail::f32_contiguous;
using detail::kChunk;
using detail::kParallelMin;

namespace {

enum class BinaryOp { Add, Sub, Mul };

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
  }
  return "?";
}

// One span of a broadcast binary op. After contiguous() + expand() the innermost dimension of
// each operand has stride 1 or 0 (broadcast), never both 0.
template <typename F>
[[gnu::always_inline]] inline void binary_loop(F f, const float* __restrict a, int64_t stride_a,
                                               const float* __restrict b, int64_t stride_b, float* __restrict out,
                                               int64_t n) {
  if (stride_a == 1 && stride_b == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (stride_b == 0) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
  } else {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
  }
}

TCAT_DISPATCH void binary_span(BinaryOp op, const float* a, int64_t stride_a, const float* b, int64_t stride_b,
                               float* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: binary_loop([](float x, float y) { return x + y; }, a, stride_a, b, stride_b, out, n); return;
    case BinaryOp::Sub: binary_loop([](float x, float y) { return x - y; }, a, stride_a, b, stride_b, out, n); return;
    case BinaryOp::Mul: binary_loop([](float x, float y) { return x * y; }, a, stride_a, b, stride_b, out, n); return;
  }
}

// The loop nest of a broadcast: size-1 dimensions dropped and neighbours merged wherever both
// operands step through them as one. Same-shape contiguous operands become a single dimension,
// a bias add [N, D] + [D] becomes [N, D] with b's outer stride 0.
struct BroadcastNest {
  std::vector<int64_t> size, stride_a, stride_b;
};

BroadcastNest broadcast_nest(const Shape& out, const Shape& stride_a, const Shape& stride_b) {
  BroadcastNest nest;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;
    const bool merges = !nest.size.empty() && nest.stride_a.back() == stride_a[i] * out[i] &&
                        nest.stride_b.back() == stride_b[i] * out[i];
    if (merges) {
      nest.size.back() *= out[i];
      nest.stride_a.back() = stride_a[i];
      nest.stride_b.back() = stride_b[i];
    } else {
      nest.size.push_back(out[i]);
      nest.stride_a.push_back(stride_a[i]);
      nest.stride_b.push_back(stride_b[i]);
    }
  }
  if (nest.size.empty()) nest = {{1}, {1}, {1}};  // a single element
  return nest;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = op_name(op);
  const Tensor a = f32_contiguous(a_in, name, "a");
  const Tensor b = f32_contiguous(b_in, name, "b");
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(out_shape);
  const int64_t n = out.numel();
  if (n == 0) return out;
  const BroadcastNest nest = broadcast_nest(out_shape, a.expand(out_shape).strides(), b.expand(out_shape).strides());
  const int nd = int(nest.size.size());
  const int64_t inner = nest.size.back();
  const int64_t sa = nest.stride_a.back(), sb = nest.stride_b.back();
  const int64_t pieces = (inner + kChunk - 1) / kChunk;  // long rows are split for parallelism
  const int64_t tasks = n / inner * pieces;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for schedule(static) if (n > kParallelMin && tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t row = t / pieces, begin = t % pieces * kChunk;
    int64_t off_a = 0, off_b = 0, rest = row;
    for (int d = nd - 2; d >= 0; --d) {
      const int64_t idx = rest % nest.size[size_t(d)];
      rest /= nest.size[size_t(d)];
      off_a += idx * nest.stride_a[size_t(d)];
      off_b += idx * nest.stride_b[size_t(d)];
    }
    binary_span(op, pa + off_a + begin * sa, sa, pb + off_b + begin * sb, sb, po + row * inner + begin,
                std::min(kChunk, inner - begin));
  }
  return out;
}

TCAT_DISPATCH void scale_span(const float* __restrict x, float s, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

TCAT_DISPATCH void axpy_span(float* __restrict dst, const float* __restrict src, float alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

// Float partial sums (vsum) over a span, returned in double for the caller to combine.
TCAT_DISPATCH double sum_span(const float* x, int64_t n) {
  return double(vsum(n, [x](int64_t i) { return x[i]; }));
}

TCAT_DISPATCH void add_span(float* __restrict acc, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

TCAT_DISPATCH void accumulate_span(double* __restrict acc, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += double(x[i]);
}

TCAT_DISPATCH bool span_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) bad |= uint32_t((std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u);
  return bad == 0;
}

// Sum of all n elements: chunk sums added in chunk order, so the result does not depend on the
// thread count.
double total(const float* x, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
  detail::parallel_chunks(
      n, [&](int64_t begin, int64_t len) { partial[size_t(begin / kChunk)] = sum_span(x + begin, len); });
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }

Tensor scale(const Tensor& a_in, float s) {
  const Tensor a = f32_contiguous(a_in, "scale", "a");
  Tensor out = Tensor::empty(a.shape());
  const float* x = a.data<float>();
  float* y = out.data<float>();
  detail::parallel_chunks(a.numel(), [&](int64_t begin, int64_t len) { scale_span(x + begin, s, y + begin, len); });
  return out;
}

void add_inplace(Tensor& dst, const Tensor& src_in, float alpha) {
  TCAT_CHECK(dst.defined() && dst.dtype() == DType::F32, "add_inplace: dst {} must be f32", dst.desc());
  const Tensor src = f32_contiguous(src_in, "add_inplace", "src");
  detail::check_same_shape("add_inplace", dst, "dst", src, "src");
  Tensor target = dst.is_contiguous() ? dst : dst.contiguous();
  float* d = target.data<float>();
  const float* s = src.data<float>();
  detail::parallel_chunks(src.numel(),
                          [&](int64_t begin, int64_t len) { axpy_span(d + begin, s + begin, alpha, len); });
  if (!dst.is_contiguous()) dst.copy_from(target);
}

Tensor sum_all(const Tensor& a_in) {
  const Tensor a = f32_contiguous(a_in, "sum_all", "a");
  Tensor out = Tensor::empty({});
  *out.data<float>() = float(total(a.data<float>(), a.numel()));
  return out;
}

bool all_finite(const Tensor& a_in) {
  const Tensor a = f32_contiguous(a_in, "all_finite", "a");
  const float* x = a.data<float>();
  const int64_t n = a.numel();
  bool finite = true;
  // Chunks are checked independently; no early exit, the common answer is "all finite".
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    finite = finite && span_finite(x + begin, std::min(kChunk, n - begin));
  }
  return finite;
}

Tensor sum_to_shape(const Tensor& grad_in, const Shape& shape) {
  const Tensor grad = f32_contiguous(grad_in, "sum_to_shape", "grad");
  const Shape& gs = grad.shape();
  TCAT_CHECK(shape.size() <= gs.size() && broadcast_shapes(shape, gs, "sum_to_shape") == gs,
             "sum_to_shape: {} cannot be summed to {}", grad.desc(), shape_str(shape));
  Tensor out = Tensor::empty(shape);
  if (shape == gs) {
    out.copy_from(grad);
    return out;
  }
  if (grad.numel() == 0 || out.numel() == 0) {
    out.zero();
    return out;
  }
  // Group grad's dimensions into alternating runs of summed and kept ones (size-1 dims dropped);
  // grad is contiguous, so each run is one dimension of the product size.
  std::vector<int64_t> size;
  std::vector<bool> summed;
  const size_t lead = gs.size() - shape.size();
  for (size_t i = 0; i < gs.size(); ++i) {
    if (gs[i] == 1) continue;
    const bool s = i < lead || shape[i - lead] == 1;
    if (!size.empty() && summed.back() == s) {
      size.back() *= gs[i];
    } else {
      size.push_back(gs[i]);
      summed.push_back(s);
    }
  }
  const float* g = grad.data<float>();
  float* o = out.data<float>();
  if (out.numel() == 1) {
    *o = float(total(g, grad.numel()));
    return out;
  }
  const int nd = int(size.size());
  std::vector<int64_t> stride(size.size());
  int64_t step = 1;
  for (int d = nd - 1; d >= 0; --d) {
    stride[size_t(d)] = step;
    step *= size[size_t(d)];
  }
  int64_t summed_count = 1;
  for (int d = 0; d < nd; ++d) summed_count *= summed[size_t(d)] ? size[size_t(d)] : 1;
  const int64_t inner = size.back();
  // Offset in grad of kept index `kept` (over the kept runs, excluding the innermost run) combined
  // with summed index `red` (over the summed runs, excluding the innermost run).
  auto offset = [&](int64_t kept, int64_t red) {
    int64_t off = 0;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t& rest = summed[size_t(d)] ? red : kept;
      off += rest % size[size_t(d)] * stride[size_t(d)];
      rest /= size[size_t(d)];
    }
    return off;
  };
  const int64_t total_work = grad.numel();
  if (summed.back()) {
    // Innermost run summed: each output element adds contiguous runs of `inner` values.
    const int64_t outer_summed = summed_count / inner;
    detail::parallel_rows(out.numel(), total_work / out.numel(), [&](int64_t k) {
      double s = 0;
      for (int64_t r = 0; r < outer_summed; ++r) s += sum_span(g + offset(k, r), inner);
      o[k] = float(s);
    });
    return out;
  }
  // Innermost run kept: grad rows are added into their output row, row-major (streaming through
  // grad). The summed rows are added in fixed groups (float) whose sums are then added in group
  // order (double), so the result does not depend on the thread count.
  constexpr int64_t kGroup = 64;
  const int64_t out_rows = out.numel() / inner;
  const int64_t groups = (summed_count + kGroup - 1) / kGroup;
  std::vector<float> group_sums(static_cast<size_t>(out_rows * groups * inner));
#pragma omp parallel for schedule(static) if (total_work > kParallelMin && out_rows * groups > 1)
  for (int64_t t = 0; t < out_rows * groups; ++t) {
    const int64_t row = t / groups, first = t % groups * kGroup;
    float* acc = group_sums.data() + t * inner;
    std::memcpy(acc, g + offset(row, first), size_t(inner) * sizeof(float));
    for (int64_t r = first + 1; r < std::min(summed_count, first + kGroup); ++r)
      add_span(acc, g + offset(row, r), inner);
  }
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  detail::parallel_rows(out_rows * blocks, groups * kBlock, [&](int64_t t) {
    const int64_t row = t / blocks, col = t % blocks * kBlock, width = std::min(kBlock, inner - col);
    double sums[kBlock];
    std::fill_n(sums, width, 0.0);
    for (int64_t k = 0; k < groups; ++k)
      accumulate_span(sums, group_sums.data() + (row * groups + k) * inner + col, width);
    for (int64_t j = 0; j < width; ++j) o[row * inner + col + j] = float(sums[j]);
  });
  return out;
}

}  // namespace tcat::kernels
