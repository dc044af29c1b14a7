#include "kernels/position.h"

#include <cmath>

#include "core/error.h"

namespace tcat::kernels {

void rotary_inplace(Tensor& x, int64_t column, int64_t heads, int64_t head_dim, const RotarySpec& spec,
                    int64_t first_position, bool inverse) {
  const int64_t rot = spec.rotary_dim, half = rot / 2;
  TCAT_CHECK(x.ndim() == 3 && x.is_contiguous() && x.dtype() == DType::F32,
             "rotary: needs contiguous f32 [batch, time, width], got {}", x.desc());
  TCAT_CHECK(rot > 0 && rot % 2 == 0 && rot <= head_dim, "rotary: rotary_dim {} must be even and in (0, {}]", rot,
             head_dim);
  TCAT_CHECK(column >= 0 && column + heads * head_dim <= x.dim(2), "rotary: {} heads x {} at column {} exceed {}",
             heads, head_dim, column, x.desc());
  TCAT_CHECK(first_position >= 0, "rotary: negative first position {}", first_position);
  const int64_t B = x.dim(0), T = x.dim(1), width = x.dim(2);
  // The angles in float32 like the reference implementations: inv_freq = 1 / base^(2i/rot), angle = pos * inv_freq.
  std::vector<float> cos_table(size_t(T * half)), sin_table(size_t(T * half));
  for (int64_t i = 0; i < half; ++i) {
    const float inv_freq = 1.0f / std::pow(spec.base, float(2 * i) / float(rot));
    for (int64_t t = 0; t < T; ++t) {
      const float angle = float(first_position + t) * inv_freq;
      cos_table[size_t(t * half + i)] = std::cos(angle);
      sin_table[size_t(t * half + i)] = inverse ? -std::sin(angle) : std::sin(angle);
    }
  }
  // Pair i of a head: elements (first[i], second[i]).
  const int64_t first_stride = spec.interleaved ? 2 : 1, second_offset = spec.interleaved ? 1 : half;
  float* data = x.data<float>();
#pragma omp parallel for collapse(2) if (B * T * heads * rot > (1 << 16))
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* c = cos_table.data() + t * half;
      const float* s = sin_table.data() + t * half;
      for (int64_t h = 0; h < heads; ++h) {
        float* head = data + (b * T + t) * width + column + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          float& x1 = head[i * first_stride];
          float& x2 = head[i * first_stride + second_offset];
          const float a = x1, bb = x2;
          x1 = a * c[i] - bb * s[i];
          x2 = bb * c[i] + a * s[i];
        }
      }
    }
}

std::vector<float> alibi_slopes(int64_t heads) {
  TCAT_CHECK(heads > 0, "alibi_slopes: {} heads", heads);
  int64_t closest = 1;
  while (closest * 2 <= heads) closest *= 2;
  auto geometric = [](int64_t n, int64_t count, int64_t step, std::vector<float>& out) {
    const float base = float(std::pow(2.0, -std::pow(2.0, -(std::log2(double(n)) - 3.0))));
    for (int64_t k = 0; k < count; ++k) out.push_back(std::pow(base, float(1 + k * step)));
  };
  std::vector<float> slopes;
  geometric(closest, closest, 1, slopes);
  if (closest < heads) geometric(2 * closest, std::min(closest, heads - closest), 2, slopes);
  return slopes;
}

}  // namespace tcat::kernels
