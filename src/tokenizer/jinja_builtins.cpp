#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "base/error.h"

namespace lightboat::tokenizer::jinja {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\f\v";
constexpr uint64_t kMaxRepeat = uint64_t{1} << 24;  // bytes or items a `*` repetition may produce

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, what);
}

std::string tn(const Value& v) {
  return std::string(v.type_name());
}

}  // namespace

// Python indexes strings by code point: split UTF-8 into characters (invalid bytes stand alone).
std::vector<std::string_view> utf8_chars(const std::string& s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80 && n < 4) ++n;
    out.emplace_back(s.data() + i, n);
    i += n;
  }
  return out;
}

std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
  const std::string set = chars != nullptr && chars->is_string() ? chars->as_string() : std::string(kWhitespace);
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && set.find(s[b]) != std::string::npos) ++b;
  }
  if (right) {
    while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
  }
  return s.substr(b, e - b);
}

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

std::string title_case(std::string s) {
  bool start = true;
  for (char& c : s) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alpha) c = start ? ascii_case(std::string(1, c), true)[0] : ascii_case(std::string(1, c), false)[0];
    start = !alpha;
  }
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos);
  return out;
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_number() < b.as_number() ? -1 : a.as_number() > b.as_number() ? 1 : 0;
  if (a.is_string() && b.is_string())
    return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() == b.as_string() ? 0 : 1;
  if ((a.is_bool() || a.is_number()) && (b.is_bool() || b.is_number())) {
    auto num = [](const Value& v) { return v.is_bool() ? (v.as_bool() ? 1.0 : 0.0) : v.as_number(); };
    return num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0;
  }
  fail("'<' not supported between instances of '" + tn(a) + "' and '" + tn(b) + "'");
}

namespace {

Value split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Value::List parts;
  if (sep == nullptr || sep->is_none()) {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && kWhitespace.find(s[i]) != std::string_view::npos) ++i;
      if (i == s.size()) break;
      size_t j = i;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.emplace_back(strip_chars(s.substr(i), nullptr, false, true));
        break;
      }
      while (j < s.size() && kWhitespace.find(s[j]) == std::string_view::npos) ++j;
      parts.emplace_back(s.substr(i, j - i));
      i = j;
    }
    return Value::list(std::move(parts));
  }
  const std::string& d = sep->as_string();
  if (d.empty()) fail("empty separator");
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(d, pos);
    if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) break;
    parts.emplace_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  parts.emplace_back(s.substr(pos));
  return Value::list(std::move(parts));
}

int64_t int_arg(const Args& a, size_t i, std::string_view name, int64_t def) {
  const Value* v = a.get(i, name);
  if (v == nullptr || v->is_none()) return def;
  if (!v->is_int()) fail(std::string(name) + " must be an integer");
  return v->as_int();
}

std::string str_arg(const Args& a, size_t i, std::string_view name) {
  const Value* v = a.get(i, name);
  if (v == nullptr || !v->is_string()) fail(std::string(name) + " must be a string");
  return v->as_string();
}

bool starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) fail("startswith/endswith takes a string or a tuple of strings");
    return start ? s.starts_with(p.as_string()) : s.ends_with(p.as_string());
  };
  if (what.is_list()) return std::any_of(what.as_list().begin(), what.as_list().end(), one);
  return one(what);
}

Value string_method(const Value& self, std::string_view name) {
  const std::string& s = self.as_string();  // the methods below capture a copy
  auto method = [&](auto fn) { return Value::function(std::string(name), fn); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return method([s, l, r](const Args& a) { return Value(strip_chars(s, a.get(0, "chars"), l, r)); });
  }
  if (name == "split") {
    return method([s](const Args& a) { return split(s, a.get(0, "sep"), int_arg(a, 1, "maxsplit", -1)); });
  }
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return method([s, start](const Args& a) {
      const Value* p = a.get(0, "prefix");
      if (p == nullptr) fail("startswith/endswith needs an argument");
      return Value(starts_or_ends(s, *p, start));
    });
  }
  if (name == "upper" || name == "lower") {
    const bool up = name == "upper";
    return method([s, up](const Args&) { return Value(ascii_case(s, up)); });
  }
  if (name == "title") return method([s](const Args&) { return Value(title_case(s)); });
  if (name == "capitalize") {
    return method([s](const Args&) {
      return Value(ascii_case(s.substr(0, 1), true) + ascii_case(s.substr(std::min<size_t>(1, s.size())), false));
    });
  }
  if (name == "replace") {
    return method([s](const Args& a) {
      return Value(replace_all(s, str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
    });
  }
  if (name == "find" || name == "count") {
    const bool find = name == "find";
    return method([s, find](const Args& a) {
      const std::string sub = str_arg(a, 0, "sub");
      if (find) {
        const size_t p = s.find(sub);
        return Value(p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_chars(s.substr(0, p)).size()));
      }
      int64_t n = 0;
      for (size_t p = s.find(sub); !sub.empty() && p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    });
  }
  if (name == "join") {
    return method([s](const Args& a) {
      const Value* items = a.get(0, "iterable");
      if (items == nullptr) fail("join needs an iterable");
      std::string out;
      bool first = true;
      for (const Value& v : iterate(*items)) {
        if (!first) out += s;
        first = false;
        out += v.to_output();
      }
      return Value(out);
    });
  }
  return {};
}

Value dict_method(const Value& self, std::string_view name) {
  auto method = [&](auto fn) { return Value::function(std::string(name), fn); };
  if (name == "items" || name == "keys" || name == "values") {
    const int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
    return method([self, which](const Args&) {
      Value::List out;
      for (const auto& [k, v] : self.as_dict().items()) {
        if (which == 0) out.push_back(Value::list({Value(k), v}));
        if (which == 1) out.emplace_back(k);
        if (which == 2) out.push_back(v);
      }
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return method([self](const Args& a) {
      const std::string key = str_arg(a, 0, "key");
      const Value* v = self.as_dict().find(key);
      if (v != nullptr) return *v;
      const Value* def = a.get(1, "default");
      return def != nullptr ? *def : Value::none();
    });
  }
  return {};
}

Value list_method(const Value& self, std::string_view name) {
  auto method = [&](auto fn) { return Value::function(std::string(name), fn); };
  if (name == "append") {
    return method([self](const Args& a) {
      const Value* v = a.get(0, "item");
      if (v == nullptr) fail("append needs an argument");
      if (v->reaches(self)) fail("cannot append a list to itself");
      self.as_list().push_back(*v);
      return Value::none();
    });
  }
  if (name == "pop") {
    return method([self](const Args& a) {
      Value::List& l = self.as_list();
      if (l.empty()) fail("pop from an empty list");
      int64_t i = int_arg(a, 0, "index", -1);
      if (i < 0) i += static_cast<int64_t>(l.size());
      if (i < 0 || i >= static_cast<int64_t>(l.size())) fail("pop index out of range");
      Value v = l[static_cast<size_t>(i)];
      l.erase(l.begin() + i);
      return v;
    });
  }
  if (name == "index") {
    return method([self](const Args& a) {
      const Value* v = a.get(0, "item");
      const Value::List& l = self.as_list();
      for (size_t i = 0; v != nullptr && i < l.size(); ++i) {
        if (l[i] == *v) return Value(static_cast<int64_t>(i));
      }
      fail("item is not in the list");
    });
  }
  return {};
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) fail("'in <string>' requires a string as left operand, not " + tn(item));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_list()) {
    return std::any_of(container.as_list().begin(), container.as_list().end(),
                       [&](const Value& v) { return v == item; });
  }
  if (container.is_dict()) return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  if (container.is_undefined()) return false;
  fail("argument of type '" + tn(container) + "' is not iterable");
}

Value arith(std::string_view op, const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) {
    fail("unsupported operand type(s) for " + std::string(op) + ": '" + tn(a) + "' and '" + tn(b) + "'");
  }
  const bool ints = a.is_int() && b.is_int();
  const double x = a.as_number(), y = b.as_number();
  if (ints && (op == "+" || op == "-" || op == "*")) {
    int64_t r = 0;
    const bool overflow = op == "+"   ? __builtin_add_overflow(a.as_int(), b.as_int(), &r)
                          : op == "-" ? __builtin_sub_overflow(a.as_int(), b.as_int(), &r)
                                      : __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
    if (overflow) fail("integer overflow in " + std::string(op));
    return Value(r);
  }
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      const int64_t base = a.as_int(), e = b.as_int();
      if (base == 0) return Value(int64_t{e == 0 ? 1 : 0});
      if (base == 1) return Value(int64_t{1});
      if (base == -1) return Value(int64_t{e % 2 != 0 ? -1 : 1});
      int64_t r = 1;  // |base| >= 2: overflows within 63 steps
      for (int64_t i = 0; i < e; ++i) {
        if (__builtin_mul_overflow(r, base, &r)) fail("integer overflow in **");
      }
      return Value(r);
    }
    return Value(std::pow(x, y));
  }
  if (y == 0) fail("division by zero");
  if (ints && b.as_int() == -1 && a.as_int() == INT64_MIN) fail("integer overflow in " + std::string(op));
  if (op == "/") return Value(x / y);
  if (op == "//") {
    if (ints) {
      int64_t q = a.as_int() / b.as_int();
      if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
      return Value(q);
    }
    return Value(std::floor(x / y));
  }
  if (ints) {  // Python's % takes the sign of the divisor
    int64_t r = a.as_int() % b.as_int();
    if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();
    return Value(r);
  }
  return Value(x - y * std::floor(x / y));
}

}  // namespace

Value::List iterate(const Value& value) {
  if (value.is_list()) return value.as_list();
  if (value.is_dict()) {
    Value::List keys;
    for (const auto& [k, v] : value.as_dict().items()) keys.emplace_back(k);
    return keys;
  }
  if (value.is_string()) {
    Value::List out;
    for (std::string_view c : utf8_chars(value.as_string())) out.emplace_back(c);
    return out;
  }
  if (value.is_undefined() || value.is_none()) return {};  // Jinja2: undefined iterates as empty
  fail("'" + tn(value) + "' object is not iterable");
}

Value binary_op(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") return Value(a.to_output() + b.to_output());
  if (op == "==") return Value(a == b);
  if (op == "!=") return Value(!(a == b));
  if (op == "<") return Value(compare_values(a, b) < 0);
  if (op == "<=") return Value(compare_values(a, b) <= 0);
  if (op == ">") return Value(compare_values(a, b) > 0);
  if (op == ">=") return Value(compare_values(a, b) >= 0);
  if (op == "in") return Value(contains(b, a));
  if (op == "not in") return Value(!contains(b, a));
  if (op == "+" && a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
  if (op == "+" && a.is_list() && b.is_list()) {
    Value::List out = a.as_list();
    out.insert(out.end(), b.as_list().begin(), b.as_list().end());
    return Value::list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && b.is_int()) {
    const size_t unit = a.is_string() ? a.as_string().size() : a.as_list().size();
    if (b.as_int() > 0 && unit > 0 && static_cast<uint64_t>(b.as_int()) > kMaxRepeat / unit) {
      fail("repetition result too large");
    }
    if (a.is_string()) {
      std::string out;
      for (int64_t i = 0; i < b.as_int(); ++i) out += a.as_string();
      return Value(out);
    }
    Value::List out;
    for (int64_t i = 0; i < b.as_int(); ++i) out.insert(out.end(), a.as_list().begin(), a.as_list().end());
    return Value::list(std::move(out));
  }
  return arith(op, a, b);
}

Value get_attr(const Value& obj, std::string_view name) {
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
    return dict_method(obj, name);
  }
  if (obj.is_string()) return string_method(obj, name);
  if (obj.is_list()) return list_method(obj, name);
  return {};
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    if (!key.is_string()) return {};
    const Value* v = obj.as_dict().find(key.as_string());
    return v != nullptr ? *v : Value();
  }
  if ((obj.is_list() || obj.is_string()) && key.is_int()) {
    std::vector<std::string_view> chars;
    if (obj.is_string()) chars = utf8_chars(obj.as_string());
    const auto n = static_cast<int64_t>(obj.is_list() ? obj.as_list().size() : chars.size());
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return {};
    return obj.is_list() ? obj.as_list()[static_cast<size_t>(i)] : Value(chars[static_cast<size_t>(i)]);
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return {};
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (!obj.is_list() && !obj.is_string()) fail("'" + tn(obj) + "' object is not subscriptable");
  auto bound = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int()) fail(std::string("slice ") + what + " must be an integer");
    return v.as_int();
  };
  const int64_t st = bound(step, "step").value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  std::vector<std::string_view> chars;
  if (obj.is_string()) chars = utf8_chars(obj.as_string());
  const auto n = static_cast<int64_t>(obj.is_list() ? obj.as_list().size() : chars.size());
  // Python's slice.indices(): clamp to [0, n] going forward, [-1, n-1] going backward.
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t i = *v < 0 ? *v + n : *v;
    if (st > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = clamp(bound(start, "start"), st > 0 ? 0 : n - 1);
  const int64_t e = clamp(bound(stop, "stop"), st > 0 ? n : -1);
  Value::List items;
  std::string text;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (obj.is_list()) {
      items.push_back(obj.as_list()[static_cast<size_t>(i)]);
    } else {
      text += chars[static_cast<size_t>(i)];
    }
  }
  return obj.is_list() ? Value::list(std::move(items)) : Value(text);
}

Dict builtin_globals() {
  Dict g;
  g.set("range", Value::function("range", [](const Args& a) {
          int64_t start = 0, stop = 0, step = 1;
          if (a.positional.size() == 1) {
            stop = int_arg(a, 0, "stop", 0);
          } else {
            start = int_arg(a, 0, "start", 0);
            stop = int_arg(a, 1, "stop", 0);
            step = int_arg(a, 2, "step", 1);
          }
          if (step == 0) fail("range() step must not be zero");
          Value::List out;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (out.size() >= (1u << 20)) fail("range() too large");
            out.emplace_back(i);
          }
          return Value::list(std::move(out));
        }));
  auto make_dict = [](const Args& a) {
    Dict d;
    for (const Value& p : a.positional) {
      if (!p.is_dict()) fail("namespace()/dict() takes keyword arguments or a dict");
      for (const auto& [k, v] : p.as_dict().items()) d.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return Value::dict(std::move(d));
  };
  g.set("namespace", Value::function("namespace", make_dict));
  g.set("dict", Value::function("dict", make_dict));
  g.set("raise_exception", Value::function("raise_exception", [](const Args& a) -> Value {
          const Value* msg = a.get(0, "message");
          fail("raise_exception: " + (msg != nullptr ? msg->to_output() : std::string("(no message)")));
        }));
  return g;
}

}  // namespace lightboat::tokenizer::jinja
