// Watches the size of single heap allocations so the corruption tests can prove that a hostile
// count is rejected before anything is reserved. Compiled out under AddressSanitizer, whose own
// allocator must stay in charge (it reports absurd sizes itself).
#pragma once

#include <cstddef>

namespace lightboat::testing {

bool alloc_guard_active();
void reset_largest_allocation();
size_t largest_allocation();  // bytes, since the last reset

}  // namespace lightboat::testing
