// Counting heap allocations, for the tests that a loop allocates nothing. A test binary that
// links tests/alloc_counter.cpp has every global allocation function replaced (plain, array,
// aligned and nothrow forms, and their deletes) by one over malloc / free that counts while
// counting is on. All of them, so that no allocation made by one library's form is freed by
// another's (AddressSanitizer reports that mismatch). Counts calls from every thread.
#pragma once

namespace lightboat::testing {

void start_counting_allocations();  // resets the count to 0
long stop_counting_allocations();   // the count since the start

// Runs fn with counting on; returns the number of allocations it made.
template <typename Fn>
long allocations_in(Fn&& fn) {
  start_counting_allocations();
  fn();
  return stop_counting_allocations();
}

}  // namespace lightboat::testing
