// The operations, filters, tests, methods and globals of the Jinja subset (jinja_template.h),
// with Python's semantics. Errors throw Error(kInvalidArgument) with a message; the interpreter
// adds the template line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lightboat::tokenizer::jinja {

// Binary operator (not and/or, which short-circuit in the interpreter): + - * / // % ** ~
// == != < <= > >= in, "not in".
Value binary_op(std::string_view op, const Value& a, const Value& b);

// obj.name: a dict key, else a bound method of str / dict / list, else undefined.
Value get_attr(const Value& obj, std::string_view name);
// obj[key]: list or string index (negative from the end), dict key; undefined when absent.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on a list or string; undefined bounds are Python's defaults.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value apply_filter(std::string_view name, const Value& value, const Args& args);
bool apply_test(std::string_view name, const Value& value, const Args& args);

// The items a for loop visits: list items, dict keys, string characters.
Value::List iterate(const Value& value);

// range, namespace, dict, raise_exception.
Dict builtin_globals();

// Helpers shared by the builtins and the filters.
// The characters (code points) of UTF-8 text, as Python indexes strings; stray bytes stand alone.
std::vector<std::string_view> utf8_chars(const std::string& s);
// str.strip / lstrip / rstrip: `chars` (a string) or whitespace.
std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right);
std::string ascii_case(std::string s, bool upper);
std::string title_case(std::string s);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count);
// -1, 0, 1 for numbers (booleans as 0/1) or strings; throws for other pairs.
int compare_values(const Value& a, const Value& b);

}  // namespace lightboat::tokenizer::jinja
