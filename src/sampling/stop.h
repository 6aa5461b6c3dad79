// Stop strings over streamed text.
//
// Generated text arrives one detokenised piece at a time, and a stop string may be split across
// pieces ("</" + "answer>"). StopMatcher decides, after each piece, how much text is safe to send
// to the client now:
//
// - if a stop string has appeared, everything before it is released, the stop string and
//   anything after it are dropped, and stopped is set;
// - otherwise it holds back the longest tail that is the start of some stop string (it may still
//   become one) and a trailing incomplete UTF-8 sequence (a byte-level BPE piece can end in the
//   middle of a character, and a client must never see half a character), releasing the rest.
//
// When several stop strings occur, the one that *ends* first wins (then the one that starts
// first): that is the one a byte-by-byte reader would see first, so the output does not depend on
// how the text was cut into pieces. Matching is on bytes; for valid UTF-8 that is matching on
// characters, since a UTF-8 string can only match at a character boundary.
//
// The other ways a generation ends live in the caller (runtime), which owns the token ids: stop
// when the sampled token is end-of-generation (its text is not fed here) or when max_tokens is
// reached, and in both cases call flush() to release what was held back.
//
// Steady state allocates nothing: the internal buffer holds at most the held-back tail plus one
// piece and keeps its capacity.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lightboat::sampling {

class StopMatcher {
 public:
  struct Step {
    std::string_view emit;  // send this now; valid until the next feed/flush/reset
    bool stopped = false;   // a stop string matched (now or earlier): end the generation
    int stop_index = -1;    // index in the constructor's list of the string that matched
  };

  // stops may be empty (never stops); each string must be non-empty (throws
  // Error(kInvalidArgument) naming its index otherwise).
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends a piece of generated text. After a stop, further pieces are ignored (empty emit,
  // stopped still true).
  Step feed(std::string_view piece);

  // The generation ended some other way (EOG token, max tokens): releases the held-back tail,
  // including an incomplete UTF-8 sequence, which was not going to become anything else. Returns
  // empty after a stop.
  std::string_view flush();

  // Forget all text and any stop, ready for a new generation with the same stop strings.
  void reset();

  bool stopped() const { return stop_index_ >= 0; }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  size_t held_tail(std::string_view text) const;  // bytes to hold back when nothing matched

  std::vector<std::string> stops_;
  std::string buffer_;   // held-back text, then the released prefix of the last step
  size_t released_ = 0;  // bytes at the front of buffer_ handed out by the last step
  int stop_index_ = -1;
};

}  // namespace lightboat::sampling
