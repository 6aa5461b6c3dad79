// Value conversions. A value keeps its on-disk type in `type` and a widened payload in `data`, so
// conversions check the payload's range rather than trusting the declared width.
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"
#include "gguf/reader.h"

namespace lightboat::gguf {
namespace {

[[noreturn]] void wrong_type(std::string_view what, const char* expected, ValueType found) {
  throw Error(ErrorKind::kFormat, std::string(what) + ": expected " + expected + ", found " +
                                      std::string(value_type_name(found)));
}

}  // namespace

bool Value::is_integer() const {
  return std::holds_alternative<uint64_t>(data) || std::holds_alternative<int64_t>(data);
}

bool Value::is_float() const { return std::holds_alternative<double>(data); }

int64_t Value::as_int(std::string_view what) const {
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Error(ErrorKind::kFormat, std::string(what) + ": " + std::to_string(*u) + " does not fit in int64");
    }
    return static_cast<int64_t>(*u);
  }
  wrong_type(what, "an integer", type);
}

uint64_t Value::as_uint(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data)) {
    if (*i < 0) {
      throw Error(ErrorKind::kFormat, std::string(what) + ": " + std::to_string(*i) + " is negative where an unsigned value is expected");
    }
    return static_cast<uint64_t>(*i);
  }
  wrong_type(what, "an unsigned integer", type);
}

double Value::as_float(std::string_view what) const {
  // Integers are accepted: a converter that wrote 10000 as an integer still means 10000.0.
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return static_cast<double>(*i);
  wrong_type(what, "a number", type);
}

bool Value::as_bool(std::string_view what) const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  wrong_type(what, "a bool", type);
}

const std::string& Value::as_string(std::string_view what) const {
  if (const auto* s = std::get_if<std::string>(&data)) return *s;
  wrong_type(what, "a string", type);
}

const Array& Value::as_array(std::string_view what) const {
  if (const auto* a = std::get_if<Array>(&data)) return *a;
  wrong_type(what, "an array", type);
}

}  // namespace lightboat::gguf
