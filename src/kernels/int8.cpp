#include "kernels/int8.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cpu.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/int8_panels.h"
#include "kernels/int8_rows.h"
#include "kernels/ops_common.h"
#include "kernels/vecmath.h"

namespace tcat::kernels {
namespace {

// Tiles of the output that the threads claim one at a time (as the wide sgemm does): up to
// kRowTile rows by 128 columns, or 512 on wide products (an output projection onto a vocabulary).
// Zen 3, 2 threads, against fp32 sgemm on the same shapes: 128 x 512 x 2048 1.6x, 128 x 2048 x 512
// 1.8x, 128 x 58101 x 512 1.9-2.2x; taller or wider tiles left one thread idle on the narrow products.
constexpr int64_t kRowTile = 128;
constexpr int64_t kNarrowColumnTile = 128;
constexpr int64_t kWideColumnTile = 512;
constexpr int64_t kWideMinColumns = 4096;

// Few rows (decoding steps) are bound by reading the weights: each tile is one long run of columns
// for all rows, about a quarter of a thread's share, so a slower thread can hand work over.
int64_t few_row_column_tile(int64_t N) {
  const int64_t share = N / (4 * int64_t(omp_get_max_threads()));
  return std::max<int64_t>(64, (share + 15) / 16 * 16);
}

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Where the parts of an int8 weight's storage start: the values, then scales and compensations
// for `columns` output columns (whole panels in the Panels layout), then the layout tag.
struct Int8Parts {
  int64_t columns = 0;
  size_t scales = 0, compensations = 0, layout = 0, total = 0;
};

Int8Parts int8_parts(int64_t N, int64_t K, Int8Layout layout) {
  Int8Parts p;
  const bool panels = layout == Int8Layout::Panels;
  p.columns = panels ? round_up(N, detail::kPanelColumns) : N;
  const int64_t value_bytes = panels ? p.columns * round_up(K, detail::kPanelDepth) : N * K;
  p.scales = size_t(round_up(value_bytes, 64));
  p.compensations = p.scales + size_t(p.columns) * sizeof(float);
  p.layout = p.compensations + size_t(p.columns) * sizeof(int32_t);
  p.total = p.layout + sizeof(int32_t);
  return p;
}

// Byte offset of weight value (n, k) in the Panels layout (kernels/int8_panels.h).
int64_t panel_offset(int64_t n, int64_t k, int64_t K4) {
  using detail::kPanelColumns, detail::kPanelDepth;
  return n / kPanelColumns * kPanelColumns * K4 + k / kPanelDepth * kPanelColumns * kPanelDepth +
         n % kPanelColumns * kPanelDepth + k % kPanelDepth;
}

const uint8_t* storage_bytes(const Tensor& w) { return static_cast<const uint8_t*>(w.storage()->data()); }

// The layout tag in the storage's last 4 bytes (0 when there is no room for one).
int32_t stored_layout_tag(const Tensor& w) {
  int32_t tag = 0;
  if (w.storage()->bytes() >= sizeof tag)
    std::memcpy(&tag, storage_bytes(w) + w.storage()->bytes() - sizeof tag, sizeof tag);
  return tag;
}

// An int8 weight's parts, found with one check of the weight.
struct Int8View {
  Int8Layout layout;
  const int8_t* values;
  const float* scales;
  const int32_t* compensations;
};

Int8View int8_view(const Tensor& w) {
  const Int8Layout layout = int8_weight_layout(w);
  const Int8Parts parts = int8_parts(w.dim(0), w.dim(1), layout);
  return {layout, w.data<int8_t>(), reinterpret_cast<const float*>(storage_bytes(w) + parts.scales),
          reinterpret_cast<const int32_t*>(storage_bytes(w) + parts.compensations)};
}

// Row x ~= a * scale with |a| <= 127, stored as a + 128; returns the scale (1 for a zero row). A
// row holding NaN or Inf gets a NaN scale, so its outputs are NaN as in fp32.
TCAT_DISPATCH float quantize_activation_row(const float* x, int64_t K, uint8_t* q) {
  // Vectorised reductions: a plain loop here is one long chain of dependent max/add steps.
  const float peak = vmax(K, [x](int64_t k) { return std::fabs(x[k]); });
  const float poison = vsum(K, [x](int64_t k) { return x[k] * 0.0f; });  // NaN if any value is NaN or Inf
  if (poison != 0.0f) {
    std::fill(q, q + K, uint8_t(128));
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float scale = peak > 0.0f ? peak / 127.0f : 1.0f, inverse = 1.0f / scale;
  for (int64_t k = 0; k < K; ++k) q[k] = uint8_t(int(std::nearbyint(x[k] * inverse)) + 128);
  return scale;
}

// The tile's epilogue, bias included: one pass over the output. The fused multiply-adds are
// spelled out so both layouts round alike (int8_panels.h).
TCAT_DISPATCH void dequantize_tile(int64_t rows, int64_t cols, const int32_t* acc, const float* row_scales,
                                   const float* col_scales, const float* bias, float beta, float* out, int64_t ldo) {
  for (int64_t m = 0; m < rows; ++m) {
    const int32_t* a = acc + m * cols;
    float* o = out + m * ldo;
    const float s = row_scales[m];
    if (beta == 0.0f && bias) {
      for (int64_t n = 0; n < cols; ++n) o[n] = std::fma(float(a[n]) * s, col_scales[n], bias[n]);
    } else if (beta == 0.0f) {
      for (int64_t n = 0; n < cols; ++n) o[n] = float(a[n]) * s * col_scales[n];
    } else if (bias) {
      for (int64_t n = 0; n < cols; ++n) o[n] = std::fma(beta, o[n], std::fma(float(a[n]) * s, col_scales[n], bias[n]));
    } else {
      for (int64_t n = 0; n < cols; ++n) o[n] = std::fma(beta, o[n], float(a[n]) * s * col_scales[n]);
    }
  }
}

}  // namespace

Int8Layout preferred_int8_layout() {
  return cpu_features().avx512_vnni ? Int8Layout::Rows : Int8Layout::Panels;
}

Tensor quantize_weight_int8(const Tensor& w_in, Int8Layout layout) {
  TCAT_CHECK(w_in.ndim() == 2 && (w_in.dtype() == DType::F32 || w_in.dtype() == DType::BF16),
             "quantize_weight_int8: expects an f32 or bf16 matrix, got {}", w_in.desc());
  TCAT_CHECK(layout == Int8Layout::Rows || layout == Int8Layout::Panels, "quantize_weight_int8: unknown layout {}",
             int(layout));
  const Tensor w = w_in.to(DType::F32).contiguous();
  const int64_t N = w.dim(0), K = w.dim(1), K4 = round_up(K, detail::kPanelDepth);
  const Int8Parts parts = int8_parts(N, K, layout);
  auto storage = Storage::allocate(parts.total);
  uint8_t* bytes = static_cast<uint8_t*>(storage->data());
  std::memset(bytes, 0, parts.total);  // the padding of panels, scales and compensations
  int8_t* q = reinterpret_cast<int8_t*>(bytes);
  float* scales = reinterpret_cast<float*>(bytes + parts.scales);
  int32_t* comp = reinterpret_cast<int32_t*>(bytes + parts.compensations);
  std::memcpy(bytes + parts.layout, &layout, sizeof layout);
  const bool rows = layout == Int8Layout::Rows;
  const float* src = w.data<float>();
  std::atomic<int64_t> bad_row{-1};
#pragma omp parallel for if (N * K > 65536)
  for (int64_t n = 0; n < N; ++n) {
    const float* row = src + n * K;
    float peak = 0.0f;
    bool finite = true;
    for (int64_t k = 0; k < K; ++k) {
      peak = std::max(peak, std::fabs(row[k]));
      finite = finite && std::isfinite(row[k]);
    }
    if (!finite) {
      bad_row.store(n, std::memory_order_relaxed);
      continue;
    }
    const float scale = peak > 0.0f ? peak / float(kInt8WeightMax) : 1.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::min(std::max(row[k] / scale, -float(kInt8WeightMax)), float(kInt8WeightMax));
      const int8_t value = int8_t(std::nearbyint(v));
      q[rows ? n * K + k : panel_offset(n, k, K4)] = value;
      sum += value;
    }
    scales[n] = scale;
    comp[n] = -128 * sum;
  }
  TCAT_CHECK(bad_row.load() < 0, "quantize_weight_int8: row {} of {} holds NaN or Inf", bad_row.load(), w_in.desc());
  return Tensor::from_storage(storage, 0, {N, K}, DType::I8);
}

bool is_int8_weight(const Tensor& w) {
  if (!w.defined() || w.dtype() != DType::I8 || w.ndim() != 2 || !w.is_contiguous() ||
      w.raw_data() != w.storage()->data())
    return false;
  const int32_t tag = stored_layout_tag(w);
  if (tag != int32_t(Int8Layout::Rows) && tag != int32_t(Int8Layout::Panels)) return false;
  return w.storage()->bytes() == int8_parts(w.dim(0), w.dim(1), Int8Layout(tag)).total;
}

Int8Layout int8_weight_layout(const Tensor& w) {
  TCAT_CHECK(is_int8_weight(w), "{} is not an int8 weight (quantize_weight_int8)", w.desc());
  return Int8Layout(stored_layout_tag(w));
}

const float* int8_weight_scales(const Tensor& w) { return int8_view(w).scales; }

void dequantize_int8_row(const Tensor& w, int64_t row, float* out) {
  const Int8View v = int8_view(w);
  const float scale = v.scales[row];
  const int64_t K = w.dim(1), K4 = round_up(K, detail::kPanelDepth);
  if (v.layout == Int8Layout::Rows) {
    for (int64_t k = 0; k < K; ++k) out[k] = float(v.values[row * K + k]) * scale;
  } else {
    for (int64_t k = 0; k < K; ++k) out[k] = float(v.values[panel_offset(row, k, K4)]) * scale;
  }
}

Int8Activations quantize_activations_int8(int64_t M, int64_t K, const float* x, int64_t ldx) {
  const int64_t stride = round_up(K, detail::kPanelDepth);
  Int8Activations q{M, K, stride, std::vector<uint8_t>(size_t(M * stride), uint8_t(128)),
                    std::vector<float>(size_t(M))};
#pragma omp parallel for if (M * K > 65536 && !omp_in_parallel())
  for (int64_t m = 0; m < M; ++m)
    q.scales[size_t(m)] = quantize_activation_row(x + m * ldx, K, q.values.data() + m * stride);
  return q;
}

const char* int8_tile(const Int8Activations& x, int64_t m0, int64_t rows, const Tensor& w, int64_t n0, int64_t cols,
                      const float* bias, float beta, float* out, int64_t ldo) {
  const Int8View v = int8_view(w);  // once per tile
  const uint8_t* xq = x.values.data() + m0 * x.stride;
  if (v.layout == Int8Layout::Panels) {
    if (n0 % detail::kPanelColumns != 0) return "a column tile of the Panels layout must start at a multiple of 16";
    detail::int8_panels(rows, xq, x.stride, v.values, x.stride, n0, cols,
                        {v.compensations, x.scales.data() + m0, v.scales, bias, beta, out, ldo});
    return nullptr;
  }
  // Per-thread int32 products, kept across calls (decoding makes many small ones).
  thread_local std::vector<int32_t> acc;
  acc.resize(size_t(rows * cols));
  const int64_t K = x.K;
  if (rows <= kSkinnyMaxRows) {
    detail::int8_rows(rows, n0, n0 + cols, K, xq, x.stride, v.values, v.compensations, acc.data(), cols);
  } else {
    // Inside a parallel region oneDNN runs the tile on the calling thread.
    const dnnl_status_t st = dnnl_gemm_u8s8s32('N', 'T', 'R', rows, cols, K, 1.0f, xq, x.stride, 0,
                                               v.values + n0 * K, K, 0, 0.0f, acc.data(), cols, v.compensations + n0);
    if (st != dnnl_success) return dnnl_status2str(st);
  }
  dequantize_tile(rows, cols, acc.data(), x.scales.data() + m0, v.scales + n0, bias ? bias + n0 : nullptr, beta, out,
                  ldo);
  return nullptr;
}

void gemm_int8_weights(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const Tensor& w,
                       const float* bias, float beta, float* out, int64_t ldo) {
  TCAT_CHECK(is_int8_weight(w) && w.dim(0) == N && w.dim(1) == K,
             "gemm_int8_weights: weight {} is not an int8 weight of [{}, {}]", w.desc(), N, K);
  if (M == 0 || N == 0) return;
  const Int8Activations xq = quantize_activations_int8(M, K, x, ldx);
  const bool few_rows = M <= kSkinnyMaxRows;
  const int64_t row_tile = few_rows ? M : kRowTile;
  const int64_t wide_or_narrow = N >= kWideMinColumns ? kWideColumnTile : kNarrowColumnTile;
  const int64_t column_tile = few_rows ? few_row_column_tile(N) : wide_or_narrow;
  const int64_t row_tiles = (M + row_tile - 1) / row_tile, column_tiles = (N + column_tile - 1) / column_tile;
  const int64_t tiles = row_tiles * column_tiles;
  std::atomic<const char*> failure{nullptr};
  detail::parallel_claims(tiles, tiles > 1 && !omp_in_parallel(), [&](int64_t tile) {
    const int64_t m0 = tile % row_tiles * row_tile, n0 = tile / row_tiles * column_tile;
    const int64_t rows = std::min(row_tile, M - m0), cols = std::min(column_tile, N - n0);
    if (const char* why = int8_tile(xq, m0, rows, w, n0, cols, bias, beta, out + m0 * ldo + n0, ldo)) failure = why;
  });
  TCAT_CHECK(!failure.load(), "gemm_int8_weights: the u8 x s8 product failed for M={} N={} K={}: {}", M, N, K,
             failure.load());
}

}  // namespace tcat::kernels
