#include "sampling/stop.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace lightboat::sampling {
namespace {

// Length of a trailing UTF-8 sequence that has its lead byte but not all its continuation bytes
// (0 when the text ends on a character boundary, or in bytes that are not UTF-8 at all: those are
// released rather than held forever).
size_t incomplete_utf8_tail(std::string_view text) {
  const size_t look = std::min<size_t>(3, text.size());
  for (size_t j = 1; j <= look; ++j) {
    const auto b = static_cast<unsigned char>(text[text.size() - j]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if ((b & 0xE0) == 0xC0)
      need = 2;
    else if ((b & 0xF0) == 0xE0)
      need = 3;
    else if ((b & 0xF8) == 0xF0)
      need = 4;
    return need > j ? j : 0;
  }
  return 0;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  size_t longest = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) {
      throw Error(ErrorKind::kInvalidArgument,
                  "stop string #" + std::to_string(i) + " is empty; stop strings must be non-empty");
    }
    longest = std::max(longest, stops_[i].size());
  }
  // Room for a held tail plus typical pieces, so the stream does not grow the buffer.
  buffer_.reserve(2 * longest + 256);
}

void StopMatcher::reset() {
  buffer_.clear();
  released_ = 0;
  stop_index_ = -1;
}

size_t StopMatcher::held_tail(std::string_view text) const {
  size_t hold = incomplete_utf8_tail(text);
  for (const auto& stop : stops_) {
    // Longest proper prefix of this stop string that the text ends with.
    for (size_t k = std::min(stop.size() - 1, text.size()); k > hold; --k) {
      if (text.ends_with(std::string_view(stop).substr(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

StopMatcher::Step StopMatcher::feed(std::string_view piece) {
  buffer_.erase(0, released_);
  released_ = 0;
  if (stopped()) return {{}, true, stop_index_};
  buffer_.append(piece);

  // The held tail contained no whole stop string, so any match ends inside the new piece;
  // searching the whole (short) buffer is simplest and still cheap.
  const std::string_view text = buffer_;
  size_t best_end = std::string_view::npos;
  size_t best_start = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t start = text.find(stops_[i]);
    if (start == std::string_view::npos) continue;
    const size_t end = start + stops_[i].size();
    if (end < best_end || (end == best_end && start < best_start)) {
      best_end = end;
      best_start = start;
      stop_index_ = static_cast<int>(i);
    }
  }
  if (stopped()) {
    buffer_.resize(best_start);  // drop the stop string and whatever followed it
    released_ = best_start;
    return {std::string_view(buffer_), true, stop_index_};
  }

  released_ = text.size() - held_tail(text);
  return {text.substr(0, released_), false, -1};
}

std::string_view StopMatcher::flush() {
  buffer_.erase(0, released_);
  released_ = 0;
  if (stopped()) return {};
  released_ = buffer_.size();
  return buffer_;
}

}  // namespace lightboat::sampling
