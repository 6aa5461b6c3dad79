#pragma once
// A growing, 64-byte-aligned scratch buffer that a kernel keeps per thread (widened activations or
// weights of a batch). Its functions are defined in aligned_buffer.cpp, compiled with the baseline
// flags: the SIMD units each have their own ISA flags and must not share inline code
// (isa_tables.h), so they call these instead of each keeping a copy. The constructor is constexpr,
// so a thread_local one needs no code to start.
#include <cstddef>

namespace lightboat::kernels::detail {

class AlignedBuffer {
 public:
  constexpr AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();

  // At least `bytes` bytes; the contents are not kept when it grows. nullptr when out of memory
  // (the buffer is then empty).
  std::byte* get(size_t bytes);
  // At least `n` floats, as get().
  float* get_floats(size_t n);

 private:
  std::byte* data_ = nullptr;
  size_t cap_ = 0;  // bytes
};

}  // namespace lightboat::kernels::detail
