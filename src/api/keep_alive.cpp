// Ollama's keep_alive values (declared in lightboat/model_manager.h): parsed from the text of a
// flag or a request field, or from a JSON number of seconds, and printed as Go prints durations.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "base/error.h"
#include "lightboat/model_manager.h"

namespace lightboat {

std::chrono::milliseconds keep_alive_from_seconds(double seconds, const std::string& field) {
  check(std::isfinite(seconds), ErrorKind::kInvalidArgument, field + ": not a number of seconds");
  if (seconds < 0) return kKeepForever;
  // Beyond ~292 years is forever too (and would overflow the nanosecond clock arithmetic).
  if (seconds > 9e9) return kKeepForever;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000)));
}

std::chrono::milliseconds parse_keep_alive(const std::string& text, const std::string& field) {
  const std::string bad = field + ": '" + text +
                          "' is not a keep-alive (a duration such as 30s, 5m, 1h30m, 500ms, or a number of seconds; "
                          "0 = unload when idle, negative = keep loaded)";
  check(!text.empty() && text.size() <= 64, ErrorKind::kInvalidArgument, bad);
  size_t i = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    i = 1;
  }
  static const std::map<std::string, double> kUnitMs = {{"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1},
                                                        {"s", 1e3},   {"m", 60e3},  {"h", 3600e3}};
  double total_ms = 0;
  bool any = false;
  while (i < text.size()) {
    // One "<number><unit>" term; a lone number (the whole text) is seconds.
    const size_t num_start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    const std::string num = text.substr(num_start, i - num_start);
    check(!num.empty() && num != "." && std::count(num.begin(), num.end(), '.') <= 1, ErrorKind::kInvalidArgument, bad);
    const size_t unit_start = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
    const std::string unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit.empty()) {
      check(!any && i == text.size(), ErrorKind::kInvalidArgument, bad);
      scale = 1e3;
    } else {
      const auto it = kUnitMs.find(unit);
      check(it != kUnitMs.end(), ErrorKind::kInvalidArgument, bad);
      scale = it->second;
    }
    total_ms += std::stod(num) * scale;
    any = true;
  }
  check(any, ErrorKind::kInvalidArgument, bad);
  return keep_alive_from_seconds((negative ? -total_ms : total_ms) / 1000.0, field);
}

std::string format_keep_alive(std::chrono::milliseconds keep_alive) {
  if (keep_alive < std::chrono::milliseconds(0)) return "forever";
  int64_t ms = keep_alive.count();
  std::string out;
  if (ms >= 3600000) {
    out += std::to_string(ms / 3600000) + "h";
    ms %= 3600000;
  }
  if (!out.empty() || ms >= 60000) {
    out += std::to_string(ms / 60000) + "m";
    ms %= 60000;
  }
  std::string sec = std::to_string(ms / 1000);
  if (ms % 1000) {
    char frac[8];
    std::snprintf(frac, sizeof(frac), ".%03d", static_cast<int>(ms % 1000));
    sec += frac;
    while (sec.back() == '0') sec.pop_back();
  }
  return out + sec + "s";
}

}  // namespace lightboat
