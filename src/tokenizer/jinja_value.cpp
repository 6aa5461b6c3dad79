#include "tokenizer/jinja_value.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/error.h"

namespace lightboat::tokenizer::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string_view key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::string(key), std::move(value));
}

bool Dict::erase(std::string_view key) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->first == key) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

const Value* Args::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return index < positional.size() ? &positional[index] : nullptr;
}

Value Value::list(List items) {
  return Value(std::make_shared<List>(std::move(items)), 0);
}

Value Value::dict(Dict d) {
  return Value(std::make_shared<Dict>(std::move(d)), 0);
}

Value Value::function(std::string name, Function fn) {
  return Value(std::make_shared<Callable>(Callable{std::move(name), std::move(fn)}), 0);
}

Value Value::call(const Args& args) const {
  check(is_function(), ErrorKind::kInvalidArgument,
        [&] { return "'" + std::string(type_name()) + "' object is not callable"; });
  return std::get<std::shared_ptr<Callable>>(data_)->fn(args);
}

namespace {

const void* identity(const Value& v) {
  if (v.is_list()) return &v.as_list();
  if (v.is_dict()) return &v.as_dict();
  return nullptr;
}

bool reaches_at(const Value& v, const void* target, int depth) {
  // Deeper than any real template builds: treat as reaching, so the insertion is refused.
  if (depth > 100) return true;
  if (identity(v) == target) return true;
  // A function may be a bound method holding its list or dict: assume it reaches.
  if (v.is_function()) return true;
  if (v.is_list()) {
    for (const Value& item : v.as_list()) {
      if (reaches_at(item, target, depth + 1)) return true;
    }
  } else if (v.is_dict()) {
    for (const auto& [k, item] : v.as_dict().items()) {
      if (reaches_at(item, target, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace

bool Value::reaches(const Value& container) const {
  const void* target = identity(container);
  return target != nullptr && reaches_at(*this, target, 0);
}

const std::string& Value::function_name() const {
  return std::get<std::shared_ptr<Callable>>(data_)->name;
}

bool Value::truthy() const {
  if (is_bool()) return as_bool();
  if (is_int()) return as_int() != 0;
  if (is_float()) return as_number() != 0.0;
  if (is_string()) return !as_string().empty();
  if (is_list()) return !as_list().empty();
  if (is_dict()) return as_dict().size() != 0;
  return is_function();
}

std::string_view Value::type_name() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "NoneType";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "str";
  if (is_list()) return "list";
  if (is_dict()) return "dict";
  return "function";
}

namespace {

// Lists and dicts are shared, so a template can make one contain itself (l.append(l)); printing
// such a value must fail, not recurse forever.
constexpr int kMaxNesting = 100;

void check_nesting(int depth) {
  check(depth <= kMaxNesting, ErrorKind::kInvalidArgument, "a value is nested too deeply to print (a cycle?)");
}

// Python's repr of a float: shortest round-trip digits, always with a '.' or exponent.
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".einn") == std::string::npos) s += ".0";
  return s;
}

void json_string_into(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // ensure_ascii=False: UTF-8 passes through
        }
    }
  }
  out += '"';
}

std::string py_string_repr(const std::string& s) {
  // Python prefers single quotes unless the string holds one and no double quote.
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  out += q;
  return out;
}

}  // namespace

std::string Value::to_output() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return repr();
}

std::string Value::repr() const {
  return repr_at(0);
}

std::string Value::repr_at(int depth) const {
  check_nesting(depth);
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return as_bool() ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_float()) return float_repr(as_number());
  if (is_string()) return py_string_repr(as_string());
  if (is_list()) {
    std::string out = "[";
    for (size_t i = 0; i < as_list().size(); ++i) {
      if (i) out += ", ";
      out += as_list()[i].repr_at(depth + 1);
    }
    return out + "]";
  }
  if (is_dict()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : as_dict().items()) {
      if (!first) out += ", ";
      first = false;
      out += py_string_repr(k) + ": " + v.repr_at(depth + 1);
    }
    return out + "}";
  }
  return "<function " + function_name() + ">";
}

std::string Value::to_json(int indent) const {
  std::string out;
  json_into(out, indent, 0);
  return out;
}

void Value::json_into(std::string& out, int indent, int depth) const {
  check_nesting(depth);
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(d), ' ');
  };
  const char* sep = indent < 0 ? ", " : ",";
  if (is_undefined() || is_none()) {
    out += "null";
  } else if (is_bool()) {
    out += as_bool() ? "true" : "false";
  } else if (is_int()) {
    out += std::to_string(as_int());
  } else if (is_float()) {
    out += float_repr(as_number());
  } else if (is_string()) {
    json_string_into(out, as_string());
  } else if (is_list()) {
    const List& l = as_list();
    if (l.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) out += sep;
      newline(depth + 1);
      l[i].json_into(out, indent, depth + 1);
    }
    newline(depth);
    out += ']';
  } else if (is_dict()) {
    const auto& items = as_dict().items();
    if (items.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (const auto& [k, v] : items) {
      if (!first) out += sep;
      first = false;
      newline(depth + 1);
      json_string_into(out, k);
      out += ": ";
      v.json_into(out, indent, depth + 1);
    }
    newline(depth);
    out += '}';
  } else {
    throw Error(ErrorKind::kInvalidArgument, "a function cannot be serialised to JSON");
  }
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_number() == b.as_number();
  }
  if (a.is_bool() && b.is_bool()) return a.as_bool() == b.as_bool();
  // Python: True == 1, False == 0.
  if (a.is_bool() && b.is_number()) return (a.as_bool() ? 1.0 : 0.0) == b.as_number();
  if (b.is_bool() && a.is_number()) return b == a;
  if (a.data_.index() != b.data_.index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.as_string() == b.as_string();
  if (a.is_list()) return a.as_list() == b.as_list();
  if (a.is_dict()) {
    const auto& x = a.as_dict().items();
    const auto& y = b.as_dict();
    if (x.size() != y.size()) return false;
    for (const auto& [k, v] : x) {
      const Value* w = y.find(k);
      if (w == nullptr || !(v == *w)) return false;
    }
    return true;
  }
  return std::get<std::shared_ptr<Value::Callable>>(a.data_) == std::get<std::shared_ptr<Value::Callable>>(b.data_);
}

}  // namespace lightboat::tokenizer::jinja
