// Tensor: a typed, strided view of a Storage. Views (reshape of contiguous data, transpose,
// permute, slice, expand) share storage; contiguous() and clone() copy.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"

namespace tcat {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Broadcast two shapes (numpy rules); `what` names the op in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what);

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  static Tensor from_ids(const std::vector<int64_t>& v, const Shape& shape);
  // A view of existing storage (e.g. a memory-mapped file) starting at byte_offset.
  static Tensor from_storage(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                             DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[size_t(wrap_dim(i))]; }
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  bool is_contiguous() const;
  std::string desc() const;  // "f32[2, 3]"
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw_data() const { return static_cast<char*>(storage_->data()) + byte_offset_; }
  template <typename T>
  T* data() const {
    TCAT_CHECK(dtype_ == dtype_of<T>(), "tensor {} accessed as {}", desc(), dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }

  // Views.
  Tensor view(const Shape& shape) const;      // contiguous only; one dimension may be -1
  Tensor reshape(const Shape& shape) const;   // view when possible, else a contiguous copy
  Tensor transpose(int a, int b) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor slice(int dim, int64_t start, int64_t end) const;
  Tensor select(int dim, int64_t index) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor expand(const Shape& shape) const;    // broadcast with stride 0

  // Copies.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  void copy_from(const Tensor& src);  // same shape (or broadcastable to this), any dtypes
  void fill(float value);
  void zero();

  std::vector<float> to_vector() const;  // any float/int dtype, logical order
  std::vector<int64_t> to_ids() const;
  float item() const;
  float at(std::initializer_list<int64_t> index) const;

  int wrap_dim(int d) const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  Shape shape_, strides_;  // strides in elements
  DType dtype_ = DType::F32;
};

}  // namespace tcat
