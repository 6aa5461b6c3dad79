// Where the shared llama.cpp fixtures are, and the loud skip when they are absent.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace lightboat::testing {

inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("LIGHTBOAT_SHARED_DIR")) return env;
  return LIGHTBOAT_SHARED_DIR;
}

inline std::filesystem::path fixtures_dir() { return shared_dir() / "fixtures"; }

}  // namespace lightboat::testing

// Skips the current test, saying so loudly on stderr, when ../shared/fixtures is absent.
#define LIGHTBOAT_REQUIRE_FIXTURES()                                                        \
  do {                                                                                      \
    if (!std::filesystem::is_directory(::lightboat::testing::fixtures_dir())) {             \
      std::fprintf(stderr, "\n*** SKIPPED: fixtures not found at %s — llama.cpp reference " \
                           "checks did NOT run ***\n\n",                                    \
                   ::lightboat::testing::fixtures_dir().c_str());                           \
      GTEST_SKIP() << "shared fixtures absent: " << ::lightboat::testing::fixtures_dir();  \
    }                                                                                       \
  } while (0)
