// The time source of the runtime's policy objects, injected so that the scheduler runs on a fake
// clock in tests (every ordering, deadline and rate decision then becomes reproducible) and on
// std::chrono::steady_clock in the engine. Not a wall clock: only differences and comparisons
// between TimePoints of one Clock mean anything.
#pragma once

#include <chrono>

namespace lightboat::runtime {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;  // nanoseconds on every platform we build on

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// The production clock: monotonic, unaffected by wall-clock changes.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to. Starts at an arbitrary fixed point (1000 s after the
// epoch, so that "now - a few seconds" stays a valid, positive time point).
class FakeClock final : public Clock {
 public:
  FakeClock() = default;
  explicit FakeClock(TimePoint start) : now_(start) {}
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }
  void set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_ = TimePoint{} + std::chrono::seconds(1000);
};

}  // namespace lightboat::runtime
