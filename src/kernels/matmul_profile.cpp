#include "kernels/matmul_profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace lightboat::kernels {
namespace {

struct Recorder {
  std::atomic<bool> on{false};
  std::mutex mutex;
  std::map<MatmulShape, MatmulShapeStats> lines;
};

Recorder& recorder() {
  static Recorder r;
  return r;
}

}  // namespace

std::string MatmulShape::type_label() const {
  std::string out;
  for (size_t i = 0; i < n_types; ++i) {
    const bool seen = std::find(types.begin(), types.begin() + static_cast<ptrdiff_t>(i), types[i]) !=
                      types.begin() + static_cast<ptrdiff_t>(i);
    if (seen) continue;
    if (!out.empty()) out += '+';
    out += tensor::dtype_name(types[i]);
  }
  return out;
}

void matmul_profile_enable(bool on) {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.on.store(on, std::memory_order_relaxed);
}

void matmul_profile_reset() {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.lines.clear();
}

bool matmul_profile_enabled() { return recorder().on.load(std::memory_order_relaxed); }

void matmul_profile_record(const MatmulShape& shape, double seconds) {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.on.load(std::memory_order_relaxed)) return;
  MatmulShapeStats& s = r.lines[shape];
  s.shape = shape;
  s.calls += 1;
  s.seconds += seconds;
}

std::vector<MatmulShapeStats> matmul_profile_lines() {
  Recorder& r = recorder();
  std::vector<MatmulShapeStats> out;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& [shape, stats] : r.lines) out.push_back(stats);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  return out;
}

}  // namespace lightboat::kernels
