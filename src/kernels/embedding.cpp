// Embedding lookup and its scatter-add backward.
#include <omp.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/int8.h"
#include "kernels/ops.h"
#include "kernels/ops_common.h"

namespace tcat::kernels {

namespace {

// ids as int64 after checking each is a row of a [vocab, D] table.
std::vector<int64_t> checked_ids(const char* op, const Tensor& ids, int64_t vocab) {
  std::vector<int64_t> v = detail::read_ids(ids, op, "ids");
  for (size_t i = 0; i < v.size(); ++i) {
    TCAT_CHECK(v[i] >= 0 && v[i] < vocab, "{}: id {} at position {} is outside the vocab size {}", op, v[i], i, vocab);
  }
  return v;
}

// dweight[ids[i], first:last] += dy[i, first:last] for every i in order: one thread owns each
// column range, so every element is summed in id order whatever the thread count.
TCAT_DISPATCH void scatter_add_columns(float* __restrict dweight, const float* __restrict dy, const int64_t* ids,
                                       int64_t count, int64_t d, int64_t first, int64_t last) {
  for (int64_t i = 0; i < count; ++i) {
    float* dst = dweight + ids[i] * d;
    const float* src = dy + i * d;
    for (int64_t j = first; j < last; ++j) dst[j] += src[j];
  }
}

// Rows of an int8 table (inference with int8-stored weights), dequantized as they are gathered.
Tensor embedding_int8(const Tensor& weight, const Tensor& ids_in) {
  TCAT_CHECK(is_int8_weight(weight), "embedding: int8 table {} is not in the int8 weight format", weight.desc());
  const int64_t d = weight.dim(1);
  const std::vector<int64_t> ids = checked_ids("embedding", ids_in, weight.dim(0));
  Shape out_shape = ids_in.shape();
  out_shape.push_back(d);
  Tensor out = Tensor::empty(out_shape);
  float* o = out.data<float>();
  detail::parallel_rows(int64_t(ids.size()), d,
                        [&](int64_t i) { dequantize_int8_row(weight, ids[size_t(i)], o + i * d); });
  return out;
}

}  // namespace

Tensor embedding(const Tensor& weight_in, const Tensor& ids_in) {
  const char* op = "embedding";
  if (weight_in.defined() && weight_in.dtype() == DType::I8) return embedding_int8(weight_in, ids_in);
  // A bf16 table (inference with bf16-stored weights) is widened row by row as it is gathered.
  const bool bf16_table = weight_in.defined() && weight_in.dtype() == DType::BF16;
  const Tensor weight = bf16_table ? weight_in.contiguous() : detail::f32_contiguous(weight_in, op, "weight");
  TCAT_CHECK(weight.ndim() == 2, "{}: weight {} must be [vocab, D]", op, weight.desc());
  const int64_t vocab = weight.dim(0), d = weight.dim(1);
  const std::vector<int64_t> ids = checked_ids(op, ids_in, vocab);
  Shape out_shape = ids_in.shape();
  out_shape.push_back(d);
  Tensor out = Tensor::empty(out_shape);
  float* o = out.data<float>();
  if (bf16_table) {
    const bf16* w = weight.data<bf16>();
    detail::parallel_rows(int64_t(ids.size()), d, [&](int64_t i) {
      const bf16* row = w + ids[size_t(i)] * d;
      for (int64_t j = 0; j < d; ++j) o[i * d + j] = bf16_to_float(row[j]);
    });
    return out;
  }
  const float* w = weight.data<float>();
  detail::parallel_rows(int64_t(ids.size()), d,
                        [&](int64_t i) { std::memcpy(o + i * d, w + ids[size_t(i)] * d, size_t(d) * sizeof(float)); });
  return out;
}

void embedding_backward(Tensor& dweight, const Tensor& ids_in, const Tensor& dy_in) {
  const char* op = "embedding_backward";
  TCAT_CHECK(dweight.defined() && dweight.ndim() == 2, "{}: dweight {} must be [vocab, D]", op, dweight.desc());
  detail::check_output(op, dweight, "dweight", dweight.shape());
  const int64_t vocab = dweight.dim(0), d = dweight.dim(1);
  const std::vector<int64_t> ids = checked_ids(op, ids_in, vocab);
  const Tensor dy = detail::f32_contiguous(dy_in, op, "dy");
  Shape expect = ids_in.shape();
  expect.push_back(d);
  TCAT_CHECK(dy.shape() == expect, "{}: dy {} does not match ids {} and dweight {}", op, dy.desc(), ids_in.desc(),
             dweight.desc());
  const int64_t count = int64_t(ids.size());
  const int threads = count * d > detail::kParallelMin ? omp_get_max_threads() : 1;
  float* dw = dweight.data<float>();
  const float* g = dy.data<float>();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    // Column ranges in multiples of 16 floats (whole cache lines for aligned rows).
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t width = ((d + team - 1) / team + 15) / 16 * 16;
    const int64_t first = std::min(d, t * width), last = std::min(d, first + width);
    if (first < last) scatter_add_columns(dw, g, ids.data(), count, d, first, last);
  }
}

}  // namespace tcat::kernels
