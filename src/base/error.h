// Typed errors for bad input. Library code throws lightboat::Error; the CLI maps it to an exit
// code and one stderr line, the server (later) to a JSON error. Asserts are only for programmer
// invariants, never for anything a file or a user controls.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

namespace lightboat {

enum class ErrorKind {
  kInvalidArgument,  // a flag, parameter or request field is wrong
  kNotFound,         // a file, key, tensor or model does not exist
  kIo,               // the OS refused: open, read, mmap
  kFormat,           // a file is malformed, truncated or hostile
  kUnsupported,      // well-formed but not something we run (tensor type, architecture)
  kInternal,         // a bug: an invariant did not hold
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Throws Error(kind, message) when cond is false. For checks of input, not invariants.
inline void check(bool cond, ErrorKind kind, const std::string& message) {
  if (!cond) throw Error(kind, message);
}

// The same for a literal: a const char* builds no std::string (a heap allocation past 15
// characters) unless the check fails.
inline void check(bool cond, ErrorKind kind, const char* message) {
  if (!cond) throw Error(kind, message);
}

// The same with a message made only when the check fails, for checks on the decode step's path,
// which must not allocate (tests/model/alloc_test.cpp):
//   check(ok, ErrorKind::kInvalidArgument, [&] { return "token " + std::to_string(t) + " ..."; });
template <typename MakeMessage>
requires std::is_invocable_r_v<std::string, MakeMessage&>
inline void check(bool cond, ErrorKind kind, MakeMessage&& make_message) {
  if (!cond) throw Error(kind, make_message());
}

}  // namespace lightboat
