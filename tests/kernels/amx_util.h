// Shared by the AMX-INT8 kernel tests: skip, saying why, where the CPU or the OS offers no AMX.
#pragma once

#include <gtest/gtest.h>

#include "kernels/dispatch.h"

#define LIGHTBOAT_REQUIRE_AMX()                                                                     \
  do {                                                                                              \
    if (!::lightboat::kernels::isa_available(::lightboat::kernels::Isa::kAmx)) {                    \
      GTEST_SKIP() << "AMX-INT8 not available here (CPU without AMX-TILE/AMX-INT8, non-x86 build, " \
                      "or the OS refused the tile state)";                                          \
    }                                                                                               \
  } while (false)
