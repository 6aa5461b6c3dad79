#include "kernels/aligned_buffer.h"

#include <cstdint>
#include <cstdlib>

namespace lightboat::kernels::detail {

AlignedBuffer::~AlignedBuffer() {
  std::free(data_);
}

std::byte* AlignedBuffer::get(size_t bytes) {
  if (bytes > cap_) {
    std::free(data_);
    data_ = nullptr;
    cap_ = 0;
    if (bytes > SIZE_MAX - 63) return nullptr;
    data_ = static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (data_ != nullptr) cap_ = bytes;
  }
  return data_;
}

float* AlignedBuffer::get_floats(size_t n) {
  if (n > SIZE_MAX / sizeof(float)) return nullptr;
  return reinterpret_cast<float*>(get(n * sizeof(float)));
}

}  // namespace lightboat::kernels::detail
