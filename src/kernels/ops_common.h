// Helpers shared by the files that implement ops.h (argument checks, parallel loops). Internal to
// src/kernels.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tcat::kernels::detail {

// Below this many elements OpenMP's fork/join costs more than it saves.
inline constexpr int64_t kParallelMin = 32768;
// Element-wise work is split into chunks of this many elements.
inline constexpr int64_t kChunk = 16384;

// `t` as a contiguous f32 tensor (a copy only when it is strided).
inline Tensor f32_contiguous(const Tensor& t, const char* op, const char* name) {
  TCAT_CHECK(t.defined(), "{}: {} is undefined", op, name);
  TCAT_CHECK(t.dtype() == DType::F32, "{}: {} must be f32, got {}", op, name, t.desc());
  return t.contiguous();
}

inline void check_same_shape(const char* op, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  TCAT_CHECK(a.shape() == b.shape(), "{}: {} {} does not match {} {}", op, a_name, a.desc(), b_name, b.desc());
}

// A tensor the op writes into: defined, f32, contiguous, of the given shape.
inline void check_output(const char* op, const Tensor& t, const char* name, const Shape& shape) {
  TCAT_CHECK(t.dtype() == DType::F32 && t.is_contiguous() && t.shape() == shape, "{}: {} {} must be a contiguous f32{}",
             op, name, t.desc(), shape_str(shape));
}

// Splits x into rows over its last dimension; returns the row length (> 0).
inline int64_t row_length(const Tensor& x, const char* op) {
  TCAT_CHECK(x.ndim() >= 1 && x.dim(-1) > 0, "{}: x {} needs a non-empty last dimension", op, x.desc());
  return x.dim(-1);
}

// A [D] parameter (gamma, beta) of a normalisation over rows of x.
inline Tensor row_param(const Tensor& p, const char* op, const char* name, const Tensor& x, int64_t d) {
  TCAT_CHECK(p.defined(), "{}: {} is undefined", op, name);
  TCAT_CHECK(p.dtype() == DType::F32 && p.shape() == Shape{d}, "{}: {} {} does not match last dim of x {}", op, name,
             p.desc(), x.desc());
  return p.contiguous();
}

// Integer ids (i64 or i32, any shape and layout) as int64 values in logical order.
inline std::vector<int64_t> read_ids(const Tensor& ids, const char* op, const char* name) {
  TCAT_CHECK(ids.defined() && (ids.dtype() == DType::I64 || ids.dtype() == DType::I32),
             "{}: {} must be i64 or i32, got {}", op, name, ids.desc());
  const Tensor c = ids.contiguous();
  const int64_t n = c.numel();
  if (c.dtype() == DType::I64) {
    const int64_t* p = c.data<int64_t>();
    return std::vector<int64_t>(p, p + n);
  }
  const int32_t* p = c.data<int32_t>();
  return std::vector<int64_t>(p, p + n);
}

// fn(begin, count) over [0, n) in chunks of kChunk, in parallel when n is large.
template <typename Fn>
void parallel_chunks(int64_t n, Fn&& fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    fn(begin, std::min(kChunk, n - begin));
  }
}

// fn(i) for every i in [0, count); with `parallel`, the threads claim the indices one at a time
// (blocks of a product), so a thread that runs slower (a busier vCPU) takes fewer of them instead
// of holding up the join.
template <typename Fn>
void parallel_claims(int64_t count, bool parallel, Fn&& fn) {
  std::atomic<int64_t> next{0};
#pragma omp parallel if (parallel)
  for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) fn(i);
}

// fn(row) for rows of `cols` elements, in parallel when the total is large.
template <typename Fn>
void parallel_rows(int64_t rows, int64_t cols, Fn&& fn) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) fn(r);
}

}  // namespace tcat::kernels::detail
