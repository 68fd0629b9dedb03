// Weights in an executor's memory (gpu/exact_program.hpp describes executors): each distinct stored matrix
// uploaded once in its dtype (fp8 with its 128x128 block scales), or widened to bf16 for the tensor cores; every
// allocation released with the store.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

#include "gpu/exact_ops.hpp"
#include "kernels/kernels.hpp"

namespace rampart::gpu {

// A step buffer in an executor's memory, grown on demand (the caller releases it).
struct scratch_buffer {
  void* p = nullptr;
  size_t bytes = 0;
};

// B with room for COUNT values of T (at least one); a move bumps *MOVED (graphs captured before read the old
// address). It grows by half again at least, so that steps a little larger each time do not move it each time.
template <class T, class Exec>
T* grow_buffer(Exec& exec, scratch_buffer& b, int64_t count, uint64_t* moved = nullptr) {
  const size_t bytes = sizeof(T) * static_cast<size_t>(count > 1 ? count : 1);
  if (b.bytes < bytes) {
    const size_t want = b.bytes == 0 ? bytes : std::max(bytes, b.bytes + b.bytes / 2);
    if (moved != nullptr) ++*moved;
    if (b.p != nullptr) exec.release(b.p);
    b.p = nullptr;
    b.bytes = 0;
    b.p = exec.alloc(want);
    b.bytes = want;
  }
  return static_cast<T*>(b.p);
}

// B grown for COUNT values and SRC copied in.
template <class T, class Exec>
T* put_buffer(Exec& exec, scratch_buffer& b, const T* src, int64_t count, uint64_t* moved = nullptr) {
  T* d = grow_buffer<T>(exec, b, count, moved);
  if (count > 0) exec.to_device(d, src, sizeof(T) * static_cast<size_t>(count));
  return d;
}

template <class Exec>
class weight_store {
 public:
  explicit weight_store(Exec* exec) : exec_(exec) {}
  ~weight_store() {
    for (void* p : owned_) exec_->release(p);
  }
  weight_store(const weight_store&) = delete;
  weight_store& operator=(const weight_store&) = delete;

  // Zeroed memory released with the store (not counted in bytes()).
  void* own(size_t bytes) {
    void* p = exec_->alloc(bytes);
    owned_.push_back(p);
    return p;
  }

  // M in its stored dtype. Views of one tensor and tied matrices share one copy; an fp8 matrix's scales come
  // along (the 128-row blocks its rows touch).
  dweight upload(const model::weight_matrix& m) {
    dweight d;
    if (m.data == nullptr) return d;
    d.type = m.type;
    d.rows = m.rows;
    d.cols = m.cols;
    d.data = copy(m.row_ptr(0), static_cast<size_t>(m.rows * m.cols) * model::dtype_size(m.type), uploaded_);
    if (m.type == model::dtype::f8_e4m3) {
      const int64_t first = m.row0 / 128, last = (m.row0 + m.rows - 1) / 128;
      const float* s = m.scale + first * m.scale_cols;
      d.scale = static_cast<const float*>(copy(reinterpret_cast<const std::byte*>(s),
                                               sizeof(float) * static_cast<size_t>((last - first + 1) * m.scale_cols),
                                               uploaded_));
      d.scale_cols = m.scale_cols;
      d.srow0 = m.row0 % 128;
    }
    return d;
  }

  // M for the tensor cores: bf16 as stored, or an fp8 matrix widened to bf16 (value times its block scale,
  // rounded to nearest even). Other dtypes stay as they are.
  dweight upload_bf16(const model::weight_matrix& m) {
    if (m.type != model::dtype::f8_e4m3 || m.data == nullptr) return upload(m);
    dweight d;
    d.type = model::dtype::bf16;
    d.rows = m.rows;
    d.cols = m.cols;
    const auto key = std::make_pair(m.row_ptr(0), static_cast<size_t>(m.rows * m.cols));
    auto it = widened_.find(key);
    if (it == widened_.end()) {
      std::vector<uint16_t> wide(static_cast<size_t>(m.rows * m.cols));
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t c = 0; c < m.cols; ++c) wide[r * m.cols + c] = bf16_bits(model::weight_at(m, r, c));
      void* p = own(sizeof(uint16_t) * wide.size());
      exec_->to_device(p, wide.data(), sizeof(uint16_t) * wide.size());  // staged: WIDE may go at once
      bytes_ += sizeof(uint16_t) * wide.size();
      it = widened_.emplace(key, p).first;
    }
    d.data = it->second;
    return d;
  }

  const float* upload_floats(const std::vector<float>& v) {
    if (v.empty()) return nullptr;
    bytes_ += sizeof(float) * v.size();
    return upload_array(v.data(), v.size());
  }

  // A copy of N values of V (a table of dweights, say), not shared.
  template <class T>
  T* upload_array(const T* v, size_t n) {
    void* p = own(sizeof(T) * n);
    exec_->to_device(p, v, sizeof(T) * n);
    return static_cast<T*>(p);
  }

  size_t bytes() const { return bytes_; }  // weights held

 private:
  using key = std::pair<const std::byte*, size_t>;
  const void* copy(const std::byte* src, size_t n, std::map<key, void*>& done) {
    auto it = done.find(key(src, n));
    if (it == done.end()) {
      void* p = own(n);
      exec_->to_device(p, src, n);
      bytes_ += n;
      it = done.emplace(key(src, n), p).first;
    }
    return it->second;
  }

  Exec* exec_;
  std::vector<void*> owned_;
  std::map<key, void*> uploaded_, widened_;
  size_t bytes_ = 0;
};

}  // namespace rampart::gpu
