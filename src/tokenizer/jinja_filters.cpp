// Filters (`x | name(args)`) and tests (`x is name(args)`) of the Jinja subset, as Jinja2 defines them.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"

namespace lightboat::tokenizer::jinja {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, what);
}

const Value& need(const Args& a, size_t i, std::string_view name, std::string_view filter) {
  const Value* v = a.get(i, name);
  if (v == nullptr) fail(std::string(filter) + ": missing argument '" + std::string(name) + "'");
  return *v;
}

int64_t int_or(const Args& a, size_t i, std::string_view name, int64_t def) {
  const Value* v = a.get(i, name);
  if (v == nullptr || v->is_none()) return def;
  if (!v->is_int()) fail(std::string(name) + " must be an integer");
  return v->as_int();
}

bool bool_or(const Args& a, size_t i, std::string_view name, bool def) {
  const Value* v = a.get(i, name);
  return v == nullptr ? def : v->truthy();
}

// Attribute `path` of an item; Jinja allows dotted paths ("function.name").
Value attribute_of(const Value& item, const std::string& path) {
  Value v = item;
  size_t pos = 0;
  for (;;) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = numeric ? get_item(v, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(v, Value(part));
    if (dot == std::string::npos) return v;
    pos = dot + 1;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// selectattr / rejectattr / select / reject: items passing a test (or truthy when none is named).
Value filter_items(const Value& seq, const Args& a, bool by_attr, bool keep) {
  size_t next = 0;
  std::string attr;
  if (by_attr) attr = need(a, next++, "attribute", "selectattr").to_output();
  std::string test;
  Args test_args;
  if (next < a.positional.size()) {
    test = a.positional[next++].to_output();
    test_args.positional.assign(a.positional.begin() + static_cast<ptrdiff_t>(next), a.positional.end());
  }
  Value::List out;
  for (const Value& item : iterate(seq)) {
    const Value v = by_attr ? attribute_of(item, attr) : item;
    const bool pass = test.empty() ? v.truthy() : apply_test(test, v, test_args);
    if (pass == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value sorted(const Value& seq, const Args& a) {
  Value::List items = iterate(seq);
  const bool reverse = bool_or(a, 0, "reverse", false);
  const bool case_sensitive = bool_or(a, 1, "case_sensitive", false);
  const Value* attr = a.get(2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attr != nullptr ? attribute_of(v, attr->to_output()) : v;
    if (!case_sensitive && k.is_string()) k = Value(ascii_case(k.as_string(), false));
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const int c = compare_values(key(x), key(y));
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}

std::string indent(const std::string& s, const Args& a) {
  const Value* w = a.get(0, "width");
  const std::string pad = w == nullptr     ? "    "
                          : w->is_string() ? w->as_string()
                                           : std::string(static_cast<size_t>(std::max<int64_t>(0, w->as_int())), ' ');
  const bool first = bool_or(a, 1, "first", false);
  const bool blank = bool_or(a, 2, "blank", false);
  std::string out;
  size_t pos = 0;
  bool line_one = true;
  for (;;) {
    const size_t nl = s.find('\n', pos);
    const std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    const bool indent_it = (line_one ? first : true) && (blank || !line.empty());
    if (indent_it) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    line_one = false;
  }
  return out;
}

Value number_filter(const Value& v, const Args& a, bool to_int) {
  if (to_int && v.is_int()) return v;
  if (v.is_number()) return to_int ? Value(static_cast<int64_t>(v.as_number())) : Value(v.as_number());
  if (v.is_bool()) return to_int ? Value(int64_t{v.as_bool()}) : Value(v.as_bool() ? 1.0 : 0.0);
  if (v.is_string()) {
    const std::string s = strip_chars(v.as_string(), nullptr, true, true);
    char* end = nullptr;
    if (to_int) {
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0') return Value(static_cast<int64_t>(i));
    }
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return to_int ? Value(static_cast<int64_t>(d)) : Value(d);
  }
  const Value* def = a.get(0, "default");
  if (def != nullptr) return *def;
  return to_int ? Value(int64_t{0}) : Value(0.0);
}

}  // namespace

Value apply_filter(std::string_view name, const Value& v, const Args& a) {
  if (name == "trim") {
    if (!v.is_string()) fail("trim: expected a string, got " + std::string(v.type_name()));
    return Value(strip_chars(v.as_string(), a.get(0, "chars"), true, true));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value(static_cast<int64_t>(utf8_chars(v.as_string()).size()));
    if (v.is_list()) return Value(static_cast<int64_t>(v.as_list().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.as_dict().size()));
    if (v.is_undefined()) return Value(int64_t{0});
    fail("object of type '" + std::string(v.type_name()) + "' has no len()");
  }
  if (name == "upper" || name == "lower") return Value(ascii_case(v.to_output(), name == "upper"));
  if (name == "title") return Value(title_case(v.to_output()));
  if (name == "capitalize") {
    const std::string s = v.to_output();
    return Value(ascii_case(s.substr(0, 1), true) + ascii_case(s.substr(std::min<size_t>(1, s.size())), false));
  }
  if (name == "default" || name == "d") {
    const bool boolean = bool_or(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
      const Value* def = a.get(0, "default_value");
      return def != nullptr ? *def : Value("");
    }
    return v;
  }
  if (name == "first" || name == "last") {
    const Value::List items = iterate(v);
    if (items.empty()) return {};
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const Value* sep = a.get(0, "d");
    const Value* attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
      if (!first && sep != nullptr) out += sep->to_output();
      first = false;
      out += (attr != nullptr ? attribute_of(item, attr->to_output()) : item).to_output();
    }
    return Value(out);
  }
  if (name == "list") return Value::list(iterate(v));
  if (name == "string") return Value(v.to_output());
  if (name == "int" || name == "float") return number_filter(v, a, name == "int");
  if (name == "abs") {
    if (!v.is_number()) fail("abs: expected a number");
    return v.is_int() ? Value(v.as_int() < 0 ? -v.as_int() : v.as_int()) : Value(std::fabs(v.as_number()));
  }
  if (name == "round") {
    if (!v.is_number()) fail("round: expected a number");
    const double scale = std::pow(10.0, static_cast<double>(int_or(a, 0, "precision", 0)));
    return Value(std::round(v.as_number() * scale) / scale);
  }
  if (name == "tojson") return Value(v.to_json(static_cast<int>(int_or(a, 0, "indent", -1))));
  if (name == "safe") return v;
  if (name == "escape" || name == "e") return Value(html_escape(v.to_output()));
  if (name == "replace") {
    return Value(replace_all(v.to_output(), need(a, 0, "old", "replace").to_output(),
                             need(a, 1, "new", "replace").to_output(), int_or(a, 2, "count", -1)));
  }
  if (name == "reverse") {
    if (v.is_string()) return slice(v, Value(), Value(), Value(int64_t{-1}));
    Value::List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "sort") return sorted(v, a);
  if (name == "unique") {
    Value::List out;
    for (const Value& item : iterate(v)) {
      if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return o == item; })) out.push_back(item);
    }
    return Value::list(std::move(out));
  }
  if (name == "items" || name == "dictsort") {
    if (!v.is_dict()) fail(std::string(name) + ": expected a mapping");
    Value::List out;
    for (const auto& [k, x] : v.as_dict().items()) out.push_back(Value::list({Value(k), x}));
    if (name == "dictsort") {
      std::stable_sort(out.begin(), out.end(), [](const Value& x, const Value& y) {
        return x.as_list()[0].as_string() < y.as_list()[0].as_string();
      });
    }
    return Value::list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr") return filter_items(v, a, true, name == "selectattr");
  if (name == "select" || name == "reject") return filter_items(v, a, false, name == "select");
  if (name == "map") {
    Value::List out;
    const Value* attr = a.get(99, "attribute");
    for (const Value& item : iterate(v)) {
      if (attr != nullptr) {
        Value x = attribute_of(item, attr->to_output());
        const Value* def = a.get(99, "default");
        out.push_back(x.is_undefined() && def != nullptr ? *def : x);
      } else {
        const std::string filter = need(a, 0, "filter", "map").to_output();
        Args rest;
        rest.positional.assign(a.positional.begin() + 1, a.positional.end());
        out.push_back(apply_filter(filter, item, rest));
      }
    }
    return Value::list(std::move(out));
  }
  if (name == "indent") return Value(indent(v.to_output(), a));
  if (name == "sum") {
    Value total = a.get(1, "start") != nullptr ? *a.get(1, "start") : Value(int64_t{0});
    const Value* attr = a.get(0, "attribute");
    for (const Value& item : iterate(v))
      total = binary_op("+", total, attr ? attribute_of(item, attr->to_output()) : item);
    return total;
  }
  if (name == "min" || name == "max") {
    const Value::List items = iterate(v);
    if (items.empty()) return {};
    Value best = items[0];
    for (const Value& item : items) {
      const int c = compare_values(item, best);
      if (name == "min" ? c < 0 : c > 0) best = item;
    }
    return best;
  }
  fail("unknown filter '" + std::string(name) + "'");
}

bool apply_test(std::string_view name, const Value& v, const Args& a) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_function();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) fail(std::string(name) + ": expected an integer");
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const int64_t n = int_or(a, 0, "num", 0);
    if (!v.is_int() || n == 0) fail("divisibleby: expected integers, the divisor not zero");
    return v.as_int() % n == 0;
  }
  if (name == "lower") return v.is_string() && ascii_case(v.as_string(), false) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_case(v.as_string(), true) == v.as_string();
  static constexpr std::pair<std::string_view, std::string_view> kCompare[] = {
      {"eq", "=="},         {"equalto", "=="}, {"==", "=="}, {"sameas", "=="}, {"ne", "!="}, {"!=", "!="},
      {"lt", "<"},          {"lessthan", "<"}, {"<", "<"},   {"le", "<="},     {"<=", "<="}, {"gt", ">"},
      {"greaterthan", ">"}, {">", ">"},        {"ge", ">="}, {">=", ">="},
  };
  for (const auto& [test, op] : kCompare) {
    if (name == test) return binary_op(op, v, need(a, 0, "other", name)).truthy();
  }
  if (name == "in") return binary_op("in", v, need(a, 0, "seq", "in")).truthy();
  fail("unknown test '" + std::string(name) + "'");
}

}  // namespace lightboat::tokenizer::jinja
