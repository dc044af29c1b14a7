#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/allocator.h"
#include "kernels/dispatch.h"
#include "kernels/int8.h"
#include "kernels/ops_common.h"

namespace tcat::kernels {
namespace {

void check_dnnl(dnnl_status_t st, const char* what, int64_t M, int64_t N, int64_t K) {
  TCAT_CHECK(st == dnnl_success, "{}: oneDNN failed (status {}) for M={} N={} K={}", what, int(st), M, N, K);
}

struct Dnnl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Dnnl& dnnl_ctx() {
  static Dnnl ctx;
  return ctx;
}

using MatmulKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

// oneDNN primitive creation costs far more than a small GEMM, so primitives are cached per shape.
struct Bf16MatmulCache {
  std::mutex mu;
  std::map<MatmulKey, dnnl::matmul> prims;
};

Bf16MatmulCache& bf16_cache() {
  static Bf16MatmulCache c;
  return c;
}

dnnl::memory::desc matrix_desc(int64_t rows, int64_t cols, int64_t ld, bool transposed,
                               dnnl::memory::data_type dt) {
  // Logical rows x cols; stored row-major with leading dimension ld, or column-major when transposed.
  dnnl::memory::dims strides = transposed ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1};
  return dnnl::memory::desc({rows, cols}, dt, strides);
}

std::optional<dnnl::matmul> make_bf16_matmul(const MatmulKey& key) {
  const auto [ta, tb, M, N, K, lda, ldb, ldc, alpha, beta] = key;
  using dt = dnnl::memory::data_type;
  try {
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(beta);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::desc desc(matrix_desc(M, K, lda, ta, dt::bf16), matrix_desc(K, N, ldb, tb, dt::bf16),
                            matrix_desc(M, N, ldc, false, dt::f32));
    dnnl::matmul::primitive_desc pd(desc, attr, dnnl_ctx().engine);
    return dnnl::matmul(pd);
  } catch (const dnnl::error&) {
    return std::nullopt;  // this CPU has no bf16 matmul implementation in oneDNN
  }
}

bool probe_bf16_native() {
  return make_bf16_matmul(MatmulKey{false, false, 16, 16, 16, 16, 16, 16, 1.0f, 0.0f}).has_value();
}

TCAT_DISPATCH void widen_span(const bf16* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
}

// Widens a bf16 matrix (rows x cols with leading dimension ld) to a dense fp32 one.
std::vector<float> widen(const bf16* src, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(size_t(rows * cols));
#pragma omp parallel for if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) widen_span(src + r * ld, cols, out.data() + r * cols);
  return out;
}

// Wide products (an output projection onto a vocabulary) run as blocks of kClaimedColumns output
// columns that the threads claim one at a time, each a single-threaded sgemm, rather than as one
// sgemm split statically between the threads: a vCPU that runs slower then takes fewer blocks.
// Zen 3, 2 threads, alternating runs: 128 x 50257 x 768 +18%, 32 x 58101 x 512 +26%, 2048 x 8000 x
// 256 +6%; narrower products gain nothing or lose (768 columns: -25%).
constexpr int64_t kClaimedColumns = 512;
constexpr int64_t kWideMinColumns = 8 * kClaimedColumns;

// Weight rows widened per block of the blocked bf16-weight product: the fp32 block stays in the
// L2 cache while sgemm reads it.
constexpr int64_t kWidenedBlockBytes = int64_t(256) << 10;

// A consumed column block (linear_by_column_blocks) fits the L2 cache of every supported CPU
// (Zen 3: 512 KB), and a product has at least kMinConsumedBlocks of them, enough for the threads
// to share out. Widths depend on the shape alone, not on the thread count, so what a consumer
// puts together from the blocks (a log-sum-exp) is the same whatever -t says.
constexpr int64_t kConsumedBlockBytes = int64_t(256) << 10;
constexpr int64_t kMinConsumedBlocks = 32;

int64_t column_block_width(int64_t R, int64_t N) {
  const int64_t in_cache = kConsumedBlockBytes / (int64_t(sizeof(float)) * std::max<int64_t>(R, 1));
  const int64_t width = std::min(in_cache, (N + kMinConsumedBlocks - 1) / kMinConsumedBlocks);
  return std::max<int64_t>(16, width / 16 * 16);  // whole cache lines of each row
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  if (N < kWideMinColumns || omp_get_max_threads() == 1 || omp_in_parallel()) {
    check_dnnl(dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), "sgemm", M, N, K);
    return;
  }
  std::atomic<int> failure{int(dnnl_success)};
  detail::parallel_claims((N + kClaimedColumns - 1) / kClaimedColumns, true, [&](int64_t block) {
    const int64_t n0 = block * kClaimedColumns;
    const float* b = trans_b ? B + n0 * ldb : B + n0;
    // Inside the parallel region oneDNN runs each block on the calling thread.
    const dnnl_status_t st =
        dnnl_sgemm(ta, tb, M, std::min(kClaimedColumns, N - n0), K, alpha, A, lda, b, ldb, beta, C + n0, ldc);
    if (st != dnnl_success) failure.store(int(st), std::memory_order_relaxed);
  });
  check_dnnl(dnnl_status_t(failure.load()), "sgemm", M, N, K);
}

bool bf16_gemm_native() {
  static const bool native = probe_bf16_native();
  return native;
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (!bf16_gemm_native()) {
    const std::vector<float> a = trans_a ? widen(A, K, M, lda) : widen(A, M, K, lda);
    const std::vector<float> b = trans_b ? widen(B, N, K, ldb) : widen(B, K, N, ldb);
    sgemm(trans_a, trans_b, M, N, K, alpha, a.data(), trans_a ? M : K, b.data(), trans_b ? K : N, beta, C, ldc);
    return;
  }
  const MatmulKey key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta};
  dnnl::matmul prim;
  {
    auto& cache = bf16_cache();
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.prims.find(key);
    if (it == cache.prims.end()) {
      auto made = make_bf16_matmul(key);
      TCAT_CHECK(made.has_value(), "gemm_bf16: oneDNN cannot build a matmul for M={} N={} K={}", M, N, K);
      it = cache.prims.emplace(key, *made).first;
    }
    prim = it->second;
  }
  using dt = dnnl::memory::data_type;
  auto& ctx = dnnl_ctx();
  dnnl::memory a(matrix_desc(M, K, lda, trans_a, dt::bf16), ctx.engine, const_cast<bf16*>(A));
  dnnl::memory b(matrix_desc(K, N, ldb, trans_b, dt::bf16), ctx.engine, const_cast<bf16*>(B));
  dnnl::memory c(matrix_desc(M, N, ldc, false, dt::f32), ctx.engine, C);
  prim.execute(ctx.stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  ctx.stream.wait();
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  TCAT_CHECK(a_in.ndim() >= 2 && b_in.ndim() >= 2, "matmul: operands must be at least 2-D, got {} and {}",
             a_in.desc(), b_in.desc());
  TCAT_CHECK(a_in.dtype() == b_in.dtype() && (a_in.dtype() == DType::F32 || a_in.dtype() == DType::BF16),
             "matmul: operands must both be f32 or both bf16, got {} and {}", a_in.desc(), b_in.desc());
  const int64_t M = trans_a ? a_in.dim(-1) : a_in.dim(-2);
  const int64_t K = trans_a ? a_in.dim(-2) : a_in.dim(-1);
  const int64_t Kb = trans_b ? b_in.dim(-1) : b_in.dim(-2);
  const int64_t N = trans_b ? b_in.dim(-2) : b_in.dim(-1);
  TCAT_CHECK(K == Kb, "matmul: inner dimensions differ: {}{} x {}{}", a_in.desc(), trans_a ? "^T" : "",
             b_in.desc(), trans_b ? "^T" : "");
  const Shape a_batch(a_in.shape().begin(), a_in.shape().end() - 2);
  const Shape b_batch(b_in.shape().begin(), b_in.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  const int64_t nb = shape_numel(batch);

  auto with_matrix = [](Shape s, int64_t r, int64_t c) {
    s.push_back(r);
    s.push_back(c);
    return s;
  };
  const Tensor a = a_in.expand(with_matrix(batch, a_in.dim(-2), a_in.dim(-1))).contiguous();
  const Tensor b = b_in.expand(with_matrix(batch, b_in.dim(-2), b_in.dim(-1))).contiguous();
  Tensor c = Tensor::empty(with_matrix(batch, M, N));
  const int64_t lda = a.dim(-1), ldb = b.dim(-1);
  const int64_t sa = a.dim(-2) * lda, sb = b.dim(-2) * ldb;
  for (int64_t i = 0; i < nb; ++i) {
    float* cp = c.data<float>() + i * M * N;
    if (a.dtype() == DType::F32) {
      sgemm(trans_a, trans_b, M, N, K, 1.0f, a.data<float>() + i * sa, lda, b.data<float>() + i * sb, ldb, 0.0f, cp, N);
    } else {
      gemm_bf16(trans_a, trans_b, M, N, K, 1.0f, a.data<bf16>() + i * sa, lda, b.data<bf16>() + i * sb, ldb, 0.0f, cp,
                N);
    }
  }
  return c;
}

void sgemm_bf16_weights(int64_t M, int64_t N, int64_t K, const float* x, const bf16* w, float beta, float* out) {
  if (M == 0 || N == 0) return;
  const int64_t block = std::min(N, std::max<int64_t>(16, kWidenedBlockBytes / (K * int64_t(sizeof(float))) / 16 * 16));
  std::vector<float> wide(size_t(block * K));
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t rows = std::min(block, N - n0);
    widen_span(w + n0 * K, rows * K, wide.data());
    sgemm(false, true, M, rows, K, 1.0f, x, K, wide.data(), K, beta, out + n0, N);
  }
}

void linear_into(const Tensor& x_in, const Tensor& w_in, const Tensor* bias, Tensor& out, bool accumulate,
                 MatmulPrecision precision) {
  TCAT_CHECK(w_in.ndim() == 2, "linear: weight must be 2-D, got {}", w_in.desc());
  const int64_t N = w_in.dim(0), K = w_in.dim(1);
  TCAT_CHECK(x_in.ndim() >= 1 && x_in.dim(-1) == K, "linear: input {} does not match weight {} (expects last dim {})",
             x_in.desc(), w_in.desc(), K);
  const int64_t R = x_in.numel() / K;
  TCAT_CHECK(out.defined() && out.numel() == R * N && out.dim(-1) == N && out.is_contiguous() &&
                 out.dtype() == DType::F32,
             "linear: output {} does not fit input {} and weight {}", out.desc(), x_in.desc(), w_in.desc());
  if (bias) {
    TCAT_CHECK(bias->numel() == N, "linear: bias {} does not match weight {}", bias->desc(), w_in.desc());
  }
  float* o = out.data<float>();
  float beta = accumulate ? 1.0f : 0.0f;
  const Tensor bias_f32 = bias ? bias->contiguous().to(DType::F32) : Tensor();
  if (w_in.dtype() == DType::I8) {  // the bias is added in the tiles' epilogue
    const Tensor x = x_in.to(DType::F32).contiguous();
    gemm_int8_weights(R, N, K, x.data<float>(), K, w_in, bias ? bias_f32.data<float>() : nullptr, beta, o, N);
    return;
  }
  if (bias) {
    const float* bp = bias_f32.data<float>();
    // Bias goes into the output first so the GEMM adds onto it (beta = 1): no separate pass.
#pragma omp parallel for if (R * N > 65536)
    for (int64_t r = 0; r < R; ++r) {
      float* row = o + r * N;
      if (accumulate) {
        for (int64_t n = 0; n < N; ++n) row[n] += bp[n];
      } else {
        for (int64_t n = 0; n < N; ++n) row[n] = bp[n];
      }
    }
    beta = 1.0f;
  }
  if (precision == MatmulPrecision::F32 && R <= kSkinnyMaxRows &&
      (w_in.dtype() == DType::F32 || w_in.dtype() == DType::BF16)) {
    const Tensor x = x_in.to(DType::F32).contiguous();
    const Tensor w = w_in.contiguous();
    if (w.dtype() == DType::F32) {
      skinny_gemm(R, N, K, x.data<float>(), K, w.data<float>(), K, o, N, beta != 0.0f);
    } else {
      skinny_gemm(R, N, K, x.data<float>(), K, w.data<bf16>(), K, o, N, beta != 0.0f);
    }
  } else if (precision == MatmulPrecision::F32 && w_in.dtype() == DType::BF16) {
    const Tensor x = x_in.to(DType::F32).contiguous();
    const Tensor w = w_in.contiguous();
    sgemm_bf16_weights(R, N, K, x.data<float>(), w.data<bf16>(), beta, o);
  } else if (precision == MatmulPrecision::F32) {
    const Tensor x = x_in.to(DType::F32).contiguous();
    const Tensor w = w_in.to(DType::F32).contiguous();
    sgemm(false, true, R, N, K, 1.0f, x.data<float>(), K, w.data<float>(), K, beta, o, N);
  } else {
    const Tensor x = x_in.to(DType::BF16).contiguous();
    const Tensor w = w_in.to(DType::BF16).contiguous();
    gemm_bf16(false, true, R, N, K, 1.0f, x.data<bf16>(), K, w.data<bf16>(), K, beta, o, N);
  }
}

int64_t column_block_count(int64_t R, int64_t N) {
  const int64_t width = column_block_width(R, N);
  return (N + width - 1) / width;
}

void linear_by_column_blocks(const Tensor& x_in, const Tensor& w_in, const Tensor* bias_in,
                             const ColumnBlockConsumer& consume) {
  const char* op = "linear_by_column_blocks";
  TCAT_CHECK(w_in.ndim() == 2 && (w_in.dtype() == DType::F32 || w_in.dtype() == DType::BF16 || is_int8_weight(w_in)),
             "{}: weight {} must be an f32, bf16 or int8 matrix", op, w_in.desc());
  const int64_t N = w_in.dim(0), K = w_in.dim(1);
  TCAT_CHECK(x_in.ndim() == 2 && x_in.dim(1) == K, "{}: input {} does not match weight {} (expects [rows, {}])", op,
             x_in.desc(), w_in.desc(), K);
  TCAT_CHECK(!bias_in || !bias_in->defined() || bias_in->numel() == N, "{}: bias {} does not match weight {}", op,
             bias_in->desc(), w_in.desc());
  const int64_t R = x_in.dim(0);
  if (R == 0 || N == 0) return;
  const Tensor x = x_in.to(DType::F32).contiguous();
  const Tensor w = w_in.dtype() == DType::I8 ? w_in : w_in.contiguous();
  const Tensor bias = bias_in && bias_in->defined() ? bias_in->to(DType::F32).contiguous() : Tensor();
  const Int8Activations xq = w.dtype() == DType::I8 ? quantize_activations_int8(R, K, x.data<float>(), K)
                                                     : Int8Activations{};
  const int64_t width = column_block_width(R, N), blocks = (N + width - 1) / width;
  // An error inside the parallel region must not escape it: the first one is kept and rethrown.
  std::exception_ptr failure;
  std::atomic<bool> failed{false};
  detail::parallel_claims(blocks, blocks > 1 && !omp_in_parallel(), [&](int64_t block) {
    if (failed.load(std::memory_order_relaxed)) return;
    try {
      const int64_t n0 = block * width, cols = std::min(width, N - n0);
      Tensor values = Tensor::empty({R, cols});
      if (w.dtype() == DType::I8) {
        const char* why = int8_tile(xq, 0, R, w, n0, cols, bias.defined() ? bias.data<float>() : nullptr, 0.0f,
                                    values.data<float>(), cols);
        TCAT_CHECK(!why, "{}: the u8 x s8 product failed on input {} and weight {}: {}", op, x_in.desc(),
                   w_in.desc(), why);
      } else {
        // Inside the parallel region linear_into's products run on the calling thread.
        const Tensor block_bias = bias.defined() ? bias.slice(0, n0, n0 + cols) : Tensor();
        linear_into(x, w.slice(0, n0, n0 + cols), bias.defined() ? &block_bias : nullptr, values, false,
                    MatmulPrecision::F32);
      }
      consume(block, n0, cols, values.data<float>());
    } catch (...) {
#pragma omp critical(linear_by_column_blocks_failure)
      if (!failure) failure = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  });
  if (failure) std::rethrow_exception(failure);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor* bias, MatmulPrecision precision) {
  Shape shape = x.shape();
  TCAT_CHECK(!shape.empty() && w.ndim() == 2, "linear: input {} / weight {}", x.desc(), w.desc());
  shape.back() = w.dim(0);
  Tensor out = Tensor::empty(shape);
  linear_into(x, w, bias, out, false, precision);
  return out;
}

}  // namespace tcat::kernels
