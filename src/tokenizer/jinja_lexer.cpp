#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "base/error.h"

namespace lightboat::tokenizer::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& what) {
  throw Error(ErrorKind::kFormat, "chat template line " + std::to_string(line) + ": " + what);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A piece of the template before whitespace control: literal text, or a tag with its tokens.
struct Segment {
  enum Kind { kText, kVar, kBlock, kComment } kind = kText;
  std::string text;           // kText
  std::vector<Token> tokens;  // kVar / kBlock, without the delimiters
  char open_sign = 0;         // '-' or '+' right after the opening delimiter, else 0
  char close_sign = 0;        // '-' or '+' right before the closing delimiter, else 0
  int line = 1;
};

class Scanner {
 public:
  explicit Scanner(std::string_view src) : src_(src) {}

  std::vector<Segment> run() {
    std::vector<Segment> out;
    while (pos_ < src_.size()) {
      const size_t open = find_open(pos_);
      if (open > pos_) out.push_back(text_segment(pos_, open));
      if (open == src_.size()) break;
      out.push_back(tag_segment(open));
    }
    return out;
  }

 private:
  size_t find_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  Segment text_segment(size_t begin, size_t end) {
    Segment s;
    s.kind = Segment::kText;
    s.line = line_;
    s.text = std::string(src_.substr(begin, end - begin));
    advance_to(end);
    return s;
  }

  void advance_to(size_t p) {
    line_ += static_cast<int>(
        std::count(src_.begin() + static_cast<ptrdiff_t>(pos_), src_.begin() + static_cast<ptrdiff_t>(p), '\n'));
    pos_ = p;
  }

  Segment tag_segment(size_t open) {
    Segment s;
    s.line = line_;
    const char type = src_[open + 1];
    s.kind = type == '{' ? Segment::kVar : type == '%' ? Segment::kBlock : Segment::kComment;
    size_t p = open + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) s.open_sign = src_[p++];
    if (s.kind == Segment::kComment) {
      const size_t close = src_.find("#}", p);
      if (close == std::string_view::npos) fail(s.line, "unclosed comment");
      if (close > p && (src_[close - 1] == '-' || src_[close - 1] == '+')) s.close_sign = src_[close - 1];
      advance_to(close + 2);
      return s;
    }
    advance_to(p);
    const char closer = s.kind == Segment::kVar ? '}' : '%';
    int depth = 0;  // open ( [ { inside the tag: a `}}` there closes a dict, not the tag
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) fail(s.line, "unclosed tag");
      const char c = src_[pos_];
      if (depth == 0) {
        if ((c == '-' || c == '+') && src_.substr(pos_ + 1, 2) == std::string{closer, '}'}) {
          s.close_sign = c;
          advance_to(pos_ + 3);
          return s;
        }
        if (c == closer && pos_ + 1 < src_.size() && src_[pos_ + 1] == '}') {
          advance_to(pos_ + 2);
          return s;
        }
      }
      Token t = next_token();
      if (t.kind == TokenKind::kOp) {
        if (t.text == "(" || t.text == "[" || t.text == "{") ++depth;
        if ((t.text == ")" || t.text == "]" || t.text == "}") && depth > 0) --depth;
      }
      s.tokens.push_back(std::move(t));
    }
  }

  Token next_token() {
    Token t;
    t.line = line_;
    const char c = src_[pos_];
    size_t p = pos_;
    if (is_name_start(c)) {
      while (p < src_.size() && is_name_char(src_[p])) ++p;
      t.kind = TokenKind::kName;
      t.text = std::string(src_.substr(pos_, p - pos_));
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      bool is_float = false;
      while (p < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
      if (p + 1 < src_.size() && src_[p] == '.' && std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
        is_float = true;
        ++p;
        while (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) ++p;
      }
      std::string digits;
      for (size_t i = pos_; i < p; ++i) {
        if (src_[i] != '_') digits += src_[i];
      }
      t.text = digits;
      if (is_float) {
        t.kind = TokenKind::kFloat;
        t.float_value = std::strtod(digits.c_str(), nullptr);
      } else {
        t.kind = TokenKind::kInt;
        errno = 0;
        t.int_value = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) fail(line_, "integer literal out of range");
      }
    } else if (c == '\'' || c == '"') {
      t.kind = TokenKind::kString;
      p = string_literal(p, t.text);
    } else {
      static constexpr std::string_view kTwo[] = {"**", "//", "==", "!=", "<=", ">="};
      t.kind = TokenKind::kOp;
      for (std::string_view op : kTwo) {
        if (src_.substr(p, 2) == op) {
          t.text = std::string(op);
          p += 2;
          break;
        }
      }
      if (t.text.empty()) {
        if (std::string_view("+-*/%~<>=()[]{}.,:|").find(c) == std::string_view::npos) {
          fail(line_, std::string("unexpected character '") + c + "'");
        }
        t.text = std::string(1, c);
        ++p;
      }
    }
    advance_to(p);
    return t;
  }

  // Decodes a Python-style string literal starting at the quote `p`; returns the position after it.
  size_t string_literal(size_t p, std::string& out) const {
    const char quote = src_[p++];
    while (p < src_.size() && src_[p] != quote) {
      char c = src_[p++];
      if (c != '\\' || p >= src_.size()) {
        out += c;
        continue;
      }
      c = src_[p++];
      switch (c) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '0':
          out += '\0';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case '\\':
        case '\'':
        case '"':
          out += c;
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          uint32_t cp = 0;
          size_t i = 0;
          for (; i < n && p + i < src_.size() && std::isxdigit(static_cast<unsigned char>(src_[p + i])); ++i) {
            cp = cp * 16 + static_cast<uint32_t>(std::stoi(std::string(1, src_[p + i]), nullptr, 16));
          }
          if (i != n || cp > 0x10FFFF) fail(line_, "bad \\" + std::string(1, c) + " escape in a string");
          append_utf8(out, cp);
          p += n;
          break;
        }
        default:  // Python keeps unknown escapes verbatim
          out += '\\';
          out += c;
      }
    }
    if (p >= src_.size()) fail(line_, "unclosed string literal");
    return p + 1;
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Applies whitespace control to the text segments around tags (see the header).
void control_whitespace(std::vector<Segment>& segs) {
  for (size_t i = 0; i < segs.size(); ++i) {
    Segment& s = segs[i];
    if (s.kind != Segment::kText) continue;
    const Segment* prev = i > 0 ? &segs[i - 1] : nullptr;
    const Segment* next = i + 1 < segs.size() ? &segs[i + 1] : nullptr;
    // A text starts a line when it opens the template or the tag before it ate a newline.
    bool line_start = prev == nullptr;
    if (prev != nullptr && prev->close_sign == '-') {
      const size_t keep = s.text.find_first_not_of(" \t\n\r\f\v");
      const std::string eaten = s.text.substr(0, keep == std::string::npos ? s.text.size() : keep);
      line_start = !eaten.empty() && eaten.back() == '\n';
      s.text.erase(0, eaten.size());
    } else if (prev != nullptr && prev->kind != Segment::kVar && prev->close_sign != '+') {
      if (s.text.starts_with("\r\n")) {
        s.text.erase(0, 2);
        line_start = true;
      } else if (s.text.starts_with("\n")) {
        s.text.erase(0, 1);
        line_start = true;
      }
    }
    if (next != nullptr && next->open_sign == '-') {
      const size_t last = s.text.find_last_not_of(" \t\n\r\f\v");
      s.text.erase(last == std::string::npos ? 0 : last + 1);
    } else if (next != nullptr && next->kind != Segment::kVar && next->open_sign != '+') {
      const size_t nl = s.text.rfind('\n');
      const size_t from = nl == std::string::npos ? 0 : nl + 1;
      if ((nl != std::string::npos || line_start) && s.text.find_first_not_of(" \t\r\f\v", from) == std::string::npos) {
        s.text.erase(from);
      }
    }
  }
}

}  // namespace

std::vector<Token> lex(std::string_view source) {
  // keep_trailing_newline=False: Jinja drops one newline at the very end of the template.
  if (source.ends_with("\r\n")) {
    source.remove_suffix(2);
  } else if (source.ends_with('\n')) {
    source.remove_suffix(1);
  }
  std::vector<Segment> segs = Scanner(source).run();
  control_whitespace(segs);
  std::vector<Token> out;
  for (Segment& s : segs) {
    switch (s.kind) {
      case Segment::kText:
        if (!s.text.empty()) out.push_back(Token{TokenKind::kText, std::move(s.text), 0, 0, s.line});
        break;
      case Segment::kComment:
        break;
      case Segment::kVar:
      case Segment::kBlock: {
        const bool var = s.kind == Segment::kVar;
        out.push_back(Token{var ? TokenKind::kVarBegin : TokenKind::kBlockBegin, "", 0, 0, s.line});
        for (Token& t : s.tokens) out.push_back(std::move(t));
        out.push_back(Token{var ? TokenKind::kVarEnd : TokenKind::kBlockEnd, "", 0, 0, s.line});
        break;
      }
    }
  }
  out.push_back(Token{TokenKind::kEnd, "", 0, 0, segs.empty() ? 1 : segs.back().line});
  return out;
}

}  // namespace lightboat::tokenizer::jinja
