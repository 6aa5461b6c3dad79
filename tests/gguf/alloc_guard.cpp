#include "alloc_guard.h"

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define LB_ALLOC_GUARD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LB_ALLOC_GUARD 0
#endif
#endif
#ifndef LB_ALLOC_GUARD
#define LB_ALLOC_GUARD 1
#endif

namespace lightboat::testing {
namespace {
std::atomic<size_t> g_largest{0};
}  // namespace

bool alloc_guard_active() { return LB_ALLOC_GUARD != 0; }
void reset_largest_allocation() { g_largest.store(0); }
size_t largest_allocation() { return g_largest.load(); }

}  // namespace lightboat::testing

#if LB_ALLOC_GUARD
namespace {

// Anything this large is a bug in this test binary: fail it instead of touching the memory.
constexpr size_t kRefuse = size_t{1} << 31;  // bytes

void* guarded(size_t n, size_t align) noexcept {
  size_t prev = lightboat::testing::g_largest.load(std::memory_order_relaxed);
  while (n > prev && !lightboat::testing::g_largest.compare_exchange_weak(prev, n)) {
  }
  if (n > kRefuse) return nullptr;
  if (n == 0) n = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(n);
  return std::aligned_alloc(align, (n + align - 1) / align * align);
}

}  // namespace

void* operator new(size_t n) {
  if (void* p = guarded(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return ::operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return guarded(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return guarded(n, 0); }
void* operator new(size_t n, std::align_val_t a) {
  if (void* p = guarded(n, static_cast<size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
#endif
