// Values of the Jinja subset that chat templates are written in (see jinja.h). They follow
// Python's semantics, since Hugging Face renders templates with Jinja2 on Python objects:
// lists and dicts are shared by reference (so `namespace` attributes and list.append work),
// truthiness is Python's, `undefined` prints as "" and is falsy.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace lightboat::tokenizer::jinja {

class Value;

// Insertion-ordered string-keyed map (Python dicts keep insertion order; tojson shows it).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  void set(std::string_view key, Value value);
  bool erase(std::string_view key);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;  // small: linear search is fine
};

// Arguments of a call: positional then keyword, as written.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument named `name` or at `index` (keyword wins), nullptr when not given.
  const Value* get(size_t index, std::string_view name) const;
};

using Function = std::function<Value(const Args&)>;

class Value {
 public:
  struct Undefined {};
  struct None {};
  using List = std::vector<Value>;

  Value() = default;  // undefined
  static Value none() { return Value(None{}); }
  Value(bool b) : data_(b) {}                           // NOLINT(google-explicit-constructor)
  Value(int64_t i) : data_(i) {}                        // NOLINT(google-explicit-constructor)
  Value(int i) : data_(static_cast<int64_t>(i)) {}      // NOLINT(google-explicit-constructor)
  Value(double d) : data_(d) {}                         // NOLINT(google-explicit-constructor)
  Value(std::string s) : data_(std::move(s)) {}         // NOLINT(google-explicit-constructor)
  Value(const char* s) : data_(std::string(s)) {}       // NOLINT(google-explicit-constructor)
  Value(std::string_view s) : data_(std::string(s)) {}  // NOLINT(google-explicit-constructor)
  static Value list(List items = {});
  static Value dict(Dict d = {});
  static Value function(std::string name, Function fn);

  bool is_undefined() const { return std::holds_alternative<Undefined>(data_); }
  bool is_none() const { return std::holds_alternative<None>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<List>>(data_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<Dict>>(data_); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<Callable>>(data_); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_number() const { return is_int() ? static_cast<double>(as_int()) : std::get<double>(data_); }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  List& as_list() const { return *std::get<std::shared_ptr<List>>(data_); }
  Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  Value call(const Args& args) const;  // throws unless is_function()
  // True when this value is, or holds at any depth, the list or dict `container` (identity, not
  // equality). Inserting such a value into `container` would make a reference cycle, which
  // shared ownership never frees; the interpreter refuses it. Functions count as reaching
  // (a bound method holds its object).
  bool reaches(const Value& container) const;
  const std::string& function_name() const;

  // Python truthiness: undefined, none, false, 0, "", [], {} are false.
  bool truthy() const;
  // Python type name for error messages ("str", "list", "dict", "undefined" …).
  std::string_view type_name() const;
  // What {{ value }} prints: strings as is, none as "None", booleans "True"/"False",
  // undefined as "", lists and dicts in Python's repr.
  std::string to_output() const;
  // Python repr (strings quoted with ').
  std::string repr() const;
  // JSON as Python's json.dumps(ensure_ascii=False): separators ", " and ": ", or with
  // indent >= 0 one item per line and separators "," and ": ".
  std::string to_json(int indent = -1) const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  struct Callable {
    std::string name;
    Function fn;
  };
  template <typename T>
  explicit Value(T&& v, int /*tag*/) : data_(std::forward<T>(v)) {}
  explicit Value(None n) : data_(n) {}

  void json_into(std::string& out, int indent, int depth) const;
  std::string repr_at(int depth) const;

  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<List>, std::shared_ptr<Dict>,
               std::shared_ptr<Callable>>
      data_;
};

}  // namespace lightboat::tokenizer::jinja
