#include "core/tensor.h"

#include <algorithm>
#include <cstring>

namespace tcat {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TCAT_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} do not broadcast", what,
               shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape) TCAT_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  Tensor t;
  t.storage_ = Storage::allocate(size_t(shape_numel(shape)) * dtype_size(dtype));
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  TCAT_CHECK(int64_t(v.size()) == shape_numel(shape), "from_vector: {} values for shape {}", v.size(),
             shape_str(shape));
  Tensor t = empty(shape);
  std::memcpy(t.raw_data(), v.data(), v.size() * 4);
  return t;
}

Tensor Tensor::from_ids(const std::vector<int64_t>& v, const Shape& shape) {
  TCAT_CHECK(int64_t(v.size()) == shape_numel(shape), "from_ids: {} values for shape {}", v.size(),
             shape_str(shape));
  Tensor t = empty(shape, DType::I64);
  std::memcpy(t.raw_data(), v.data(), v.size() * 8);
  return t;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                            DType dtype) {
  const size_t need = size_t(shape_numel(shape)) * dtype_size(dtype);
  TCAT_CHECK(byte_offset <= storage->bytes() && need <= storage->bytes() - byte_offset,
             "tensor {} at byte {} exceeds storage of {} bytes", shape_str(shape), byte_offset,
             storage->bytes());
  Tensor t;
  t.storage_ = std::move(storage);
  t.byte_offset_ = byte_offset;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

int Tensor::wrap_dim(int d) const {
  const int n = ndim();
  TCAT_CHECK(d >= -n && d < n, "dimension {} out of range for tensor {}", d, desc());
  return d < 0 ? d + n : d;
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "<undefined tensor>";
  return fmt::format("{}{}", dtype_name(dtype_), shape_str(shape_));
}

static Shape infer_shape(const Shape& shape, int64_t numel, const std::string& what) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      TCAT_CHECK(infer < 0, "reshape of {}: more than one -1 in {}", what, shape_str(shape));
      infer = int(i);
    } else {
      TCAT_CHECK(out[i] >= 0, "reshape of {}: negative size in {}", what, shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    TCAT_CHECK(known > 0 && numel % known == 0, "reshape of {} to {}: sizes do not divide", what,
               shape_str(shape));
    out[size_t(infer)] = numel / known;
  }
  TCAT_CHECK(shape_numel(out) == numel, "reshape of {} to {}: element counts differ", what,
             shape_str(shape));
  return out;
}

Tensor Tensor::view(const Shape& shape) const {
  TCAT_CHECK(is_contiguous(), "view of non-contiguous tensor {}", desc());
  Tensor t = *this;
  t.shape_ = infer_shape(shape, numel(), desc());
  t.strides_ = contiguous_strides(t.shape_);
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::transpose(int a, int b) const {
  a = wrap_dim(a);
  b = wrap_dim(b);
  Tensor t = *this;
  std::swap(t.shape_[size_t(a)], t.shape_[size_t(b)]);
  std::swap(t.strides_[size_t(a)], t.strides_[size_t(b)]);
  return t;
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  TCAT_CHECK(int(order.size()) == ndim(), "permute of {}: {} dims given", desc(), order.size());
  Tensor t = *this;
  std::vector<bool> seen(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    int d = wrap_dim(order[i]);
    TCAT_CHECK(!seen[size_t(d)], "permute of {}: dimension {} repeated", desc(), d);
    seen[size_t(d)] = true;
    t.shape_[i] = shape_[size_t(d)];
    t.strides_[i] = strides_[size_t(d)];
  }
  return t;
}

Tensor Tensor::slice(int d, int64_t start, int64_t end) const {
  d = wrap_dim(d);
  const int64_t n = shape_[size_t(d)];
  TCAT_CHECK(0 <= start && start <= end && end <= n, "slice [{}, {}) of dim {} of {}", start, end, d,
             desc());
  Tensor t = *this;
  t.byte_offset_ += size_t(start * strides_[size_t(d)]) * dtype_size(dtype_);
  t.shape_[size_t(d)] = end - start;
  return t;
}

Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim(d);
  Tensor t = slice(d, index, index + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::unsqueeze(int d) const {
  const int n = ndim() + 1;
  TCAT_CHECK(d >= -n && d < n, "unsqueeze({}) of {}", d, desc());
  if (d < 0) d += n;
  Tensor t = *this;
  const int64_t stride = d < ndim() ? shape_[size_t(d)] * strides_[size_t(d)] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, stride);
  return t;
}

Tensor Tensor::squeeze(int d) const {
  d = wrap_dim(d);
  TCAT_CHECK(shape_[size_t(d)] == 1, "squeeze({}) of {}: size is not 1", d, desc());
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::expand(const Shape& shape) const {
  TCAT_CHECK(shape.size() >= shape_.size(), "expand of {} to {}", desc(), shape_str(shape));
  Tensor t = *this;
  const size_t lead = shape.size() - shape_.size();
  t.shape_ = shape;
  t.strides_.assign(shape.size(), 0);
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (shape_[i] == shape[lead + i]) {
      t.strides_[lead + i] = strides_[i];
    } else {
      TCAT_CHECK(shape_[i] == 1, "expand of {} to {}: dim {} is neither equal nor 1", desc(),
                 shape_str(shape), i);
    }
  }
  return t;
}

namespace {

// Calls fn(dst_offset, src_offset) in element units for every element of `shape`, in logical order.
template <typename Fn>
void for_each_index(const Shape& shape, const Shape& dst_strides, const Shape& src_strides, Fn fn) {
  const int nd = int(shape.size());
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  std::vector<int64_t> idx(size_t(nd), 0);
  int64_t d_off = 0, s_off = 0;
  for (int64_t n = 0; n < total; ++n) {
    fn(d_off, s_off);
    for (int i = nd - 1; i >= 0; --i) {
      if (++idx[size_t(i)] < shape[size_t(i)]) {
        d_off += dst_strides[size_t(i)];
        s_off += src_strides[size_t(i)];
        break;
      }
      d_off -= dst_strides[size_t(i)] * (shape[size_t(i)] - 1);
      s_off -= src_strides[size_t(i)] * (shape[size_t(i)] - 1);
      idx[size_t(i)] = 0;
    }
  }
}

double load_as_double(const void* base, int64_t off, DType t) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[off];
    case DType::BF16: return bf16_to_float(static_cast<const bf16*>(base)[off]);
    case DType::F16: return fp16_to_float(static_cast<const fp16*>(base)[off]);
    case DType::I64: return double(static_cast<const int64_t*>(base)[off]);
    case DType::I32: return static_cast<const int32_t*>(base)[off];
    case DType::I8: return static_cast<const int8_t*>(base)[off];
    case DType::U8: return static_cast<const uint8_t*>(base)[off];
  }
  return 0;
}

void store_from_double(void* base, int64_t off, DType t, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(base)[off] = float(v); return;
    case DType::BF16: static_cast<bf16*>(base)[off] = float_to_bf16(float(v)); return;
    case DType::F16: static_cast<fp16*>(base)[off] = float_to_fp16(float(v)); return;
    case DType::I64: static_cast<int64_t*>(base)[off] = int64_t(v); return;
    case DType::I32: static_cast<int32_t*>(base)[off] = int32_t(v); return;
    case DType::I8: static_cast<int8_t*>(base)[off] = int8_t(v); return;
    case DType::U8: static_cast<uint8_t*>(base)[off] = uint8_t(v); return;
  }
}

// The conversions mixed-precision training does every step get a parallel fast path.
bool convert_contiguous(const void* src, DType st, void* dst, DType dt, int64_t n) {
  if (st == DType::F32 && dt == DType::BF16) {
    const float* s = static_cast<const float*>(src);
    bf16* d = static_cast<bf16*>(dst);
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16(s[i]);
    return true;
  }
  if (st == DType::BF16 && dt == DType::F32) {
    const bf16* s = static_cast<const bf16*>(src);
    float* d = static_cast<float*>(dst);
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_float(s[i]);
    return true;
  }
  return false;
}

}  // namespace

void Tensor::copy_from(const Tensor& src) {
  TCAT_CHECK(defined() && src.defined(), "copy between undefined tensors");
  const Tensor s = src.shape_ == shape_ ? src : src.expand(shape_);
  if (dtype_ == s.dtype_ && is_contiguous() && s.is_contiguous()) {
    std::memmove(raw_data(), s.raw_data(), size_t(numel()) * dtype_size(dtype_));
    return;
  }
  if (is_contiguous() && s.is_contiguous() && convert_contiguous(s.raw_data(), s.dtype_, raw_data(), dtype_, numel()))
    return;
  void* d = raw_data();
  const void* sp = s.raw_data();
  const size_t es = dtype_size(dtype_);
  if (dtype_ == s.dtype_) {
    for_each_index(shape_, strides_, s.strides_, [&](int64_t doff, int64_t soff) {
      std::memcpy(static_cast<char*>(d) + doff * int64_t(es), static_cast<const char*>(sp) + soff * int64_t(es), es);
    });
    return;
  }
  const DType dt = dtype_, st = s.dtype_;
  for_each_index(shape_, strides_, s.strides_, [&](int64_t doff, int64_t soff) {
    store_from_double(d, doff, dt, load_as_double(sp, soff, st));
  });
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype);
  t.copy_from(*this);
  return t;
}

void Tensor::fill(float value) {
  if (dtype_ == DType::F32 && is_contiguous()) {
    std::fill_n(static_cast<float*>(raw_data()), numel(), value);
    return;
  }
  void* d = raw_data();
  const DType dt = dtype_;
  for_each_index(shape_, strides_, strides_, [&](int64_t off, int64_t) { store_from_double(d, off, dt, value); });
}

void Tensor::zero() {
  if (is_contiguous()) {
    std::memset(raw_data(), 0, size_t(numel()) * dtype_size(dtype_));
  } else {
    fill(0.0f);
  }
}

namespace {

template <typename T>
std::vector<T> gather_as(const Tensor& t) {
  std::vector<T> out(static_cast<size_t>(t.numel()));
  const void* sp = t.raw_data();
  size_t i = 0;
  for_each_index(t.shape(), t.strides(), t.strides(),
                 [&](int64_t off, int64_t) { out[i++] = T(load_as_double(sp, off, t.dtype())); });
  return out;
}

}  // namespace

std::vector<float> Tensor::to_vector() const { return gather_as<float>(*this); }
std::vector<int64_t> Tensor::to_ids() const { return gather_as<int64_t>(*this); }

float Tensor::item() const {
  TCAT_CHECK(numel() == 1, "item() of {} with {} elements", desc(), numel());
  return float(load_as_double(raw_data(), 0, dtype_));
}

float Tensor::at(std::initializer_list<int64_t> index) const {
  TCAT_CHECK(int(index.size()) == ndim(), "at(): {} indices for {}", index.size(), desc());
  int64_t off = 0;
  size_t i = 0;
  for (int64_t v : index) {
    TCAT_CHECK(v >= 0 && v < shape_[i], "at(): index {} out of range in dim {} of {}", v, i, desc());
    off += v * strides_[i++];
  }
  return float(load_as_double(raw_data(), off, dtype_));
}

}  // namespace tcat
