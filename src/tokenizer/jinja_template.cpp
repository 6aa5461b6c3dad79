#include "tokenizer/jinja_template.h"

#include <cstdint>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"

namespace lightboat::tokenizer::jinja {
namespace {

// Deep templates (or macros calling themselves) must fail, not overflow the stack.
constexpr int kMaxDepth = 200;

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(std::string& out) : out_(&out) {}

  void push_scope() { scopes_.emplace_back(); }
  void pop_scope() { scopes_.pop_back(); }
  void define(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  Flow exec(const Body& body) {
    for (const NodePtr& n : body) {
      const Flow f = exec(*n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

 private:
  [[noreturn]] static void fail(int line, const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument, "chat template line " + std::to_string(line) + ": " + what);
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return {};
  }

  Flow exec(const Node& n) {
    try {
      switch (n.kind) {
        case NodeKind::kText:
          *out_ += n.text;
          return Flow::kNormal;
        case NodeKind::kOutput:
          *out_ += eval(*n.expr).to_output();
          return Flow::kNormal;
        case NodeKind::kIf:
          for (const IfBranch& b : n.branches) {
            if (b.cond == nullptr || eval(*b.cond).truthy()) return exec(b.body);
          }
          return Flow::kNormal;
        case NodeKind::kFor:
          return exec_for(n);
        case NodeKind::kSet:
          assign(*n.target, eval(*n.expr), n.line);
          return Flow::kNormal;
        case NodeKind::kSetBlock:
          assign(*n.target, Value(capture(n.body)), n.line);
          return Flow::kNormal;
        case NodeKind::kMacro:
          define(n.name, make_macro(n));
          return Flow::kNormal;
        case NodeKind::kGeneration:
          return exec(n.body);
        case NodeKind::kBreak:
          return Flow::kBreak;
        case NodeKind::kContinue:
          return Flow::kContinue;
      }
    } catch (const Error& e) {
      // Messages from builtins get the line of the statement; ours already carry one.
      if (std::string_view(e.what()).starts_with("chat template")) throw;
      fail(n.line, e.what());
    }
    return Flow::kNormal;
  }

  std::string capture(const Body& body) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    try {
      exec(body);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return buf;
  }

  void assign(const Expr& target, const Value& v, int line) {
    if (target.kind == ExprKind::kName) {
      define(target.name, v);
    } else if (target.kind == ExprKind::kAttr) {
      Value obj = eval(*target.children[0]);
      if (!obj.is_dict()) fail(line, "cannot set attribute '" + target.name + "' of " + std::string(obj.type_name()));
      if (v.reaches(obj)) fail(line, "cannot store '" + target.name + "' inside itself");
      obj.as_dict().set(target.name, v);
    } else {  // tuple unpacking
      const Value::List items = iterate(v);
      if (items.size() != target.children.size()) {
        fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                       std::to_string(target.children.size()) + " names");
      }
      for (size_t i = 0; i < items.size(); ++i) define(target.children[i]->name, items[i]);
    }
  }

  Flow exec_for(const Node& n) {
    Value::List all = iterate(eval(*n.expr));
    Value::List items;
    if (n.filter) {
      // The `if` filter sees each item bound to the loop variables, before `loop` exists.
      for (Value& item : all) {
        push_scope();
        assign(*n.target, item, n.line);
        const bool keep = eval(*n.filter).truthy();
        pop_scope();
        if (keep) items.push_back(std::move(item));
      }
    } else {
      items = std::move(all);
    }
    if (items.empty()) return exec(n.else_body);
    const auto count = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < count; ++i) {
      Dict loop;
      loop.set("index0", Value(i));
      loop.set("index", Value(i + 1));
      loop.set("revindex0", Value(count - 1 - i));
      loop.set("revindex", Value(count - i));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == count - 1));
      loop.set("length", Value(count));
      loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
      loop.set("nextitem", i + 1 < count ? items[static_cast<size_t>(i + 1)] : Value());
      push_scope();
      define("loop", Value::dict(std::move(loop)));
      Flow f = Flow::kNormal;
      try {
        assign(*n.target, items[static_cast<size_t>(i)], n.line);
        f = exec(n.body);
      } catch (...) {
        pop_scope();
        throw;
      }
      pop_scope();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value make_macro(const Node& n) {
    const Node* node = &n;
    return Value::function(n.name, [this, node](const Args& args) {
      if (++depth_ > kMaxDepth) fail(node->line, "macros nested too deeply");
      push_scope();
      std::string text;
      try {
        for (size_t i = 0; i < node->params.size(); ++i) {
          const auto& [pname, def] = node->params[i];
          const Value* given = args.get(i, pname);
          define(pname, given != nullptr ? *given : def ? eval(*def) : Value());
        }
        text = capture(node->body);
      } catch (...) {
        pop_scope();
        --depth_;
        throw;
      }
      pop_scope();
      --depth_;
      return Value(std::move(text));
    });
  }

  Args eval_args(const Expr& e, size_t first) {
    Args args;
    for (size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i]));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v));
    return args;
  }

  Value eval(const Expr& e) {
    if (++depth_ > kMaxDepth) fail(e.line, "expression nested too deeply");
    struct Leave {
      int* d;
      ~Leave() { --*d; }
    } leave{&depth_};
    try {
      return eval_inner(e);
    } catch (const Error& err) {
      if (std::string_view(err.what()).starts_with("chat template")) throw;
      fail(e.line, err.what());
    }
  }

  Value eval_inner(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.value;
      case ExprKind::kName:
        return lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        Value::List items;
        for (const ExprPtr& c : e.children) items.push_back(eval(*c));
        return Value::list(std::move(items));
      }
      case ExprKind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          const Value key = eval(*e.children[i]);
          if (!key.is_string()) fail(e.line, "dict keys must be strings here, not " + std::string(key.type_name()));
          d.set(key.as_string(), eval(*e.children[i + 1]));
        }
        return Value::dict(std::move(d));
      }
      case ExprKind::kAttr:
        return get_attr(eval(*e.children[0]), e.name);
      case ExprKind::kIndex:
        return get_item(eval(*e.children[0]), eval(*e.children[1]));
      case ExprKind::kSlice: {
        auto opt = [&](size_t i) { return e.children[i] ? eval(*e.children[i]) : Value(); };
        return slice(eval(*e.children[0]), opt(1), opt(2), opt(3));
      }
      case ExprKind::kCall: {
        const Value fn = eval(*e.children[0]);
        if (!fn.is_function()) {
          fail(e.line, "'" + std::string(fn.type_name()) + "' is not callable" +
                           (e.children[0]->kind == ExprKind::kName ? " ('" + e.children[0]->name + "')" : ""));
        }
        return fn.call(eval_args(e, 1));
      }
      case ExprKind::kFilter:
        return apply_filter(e.name, eval(*e.children[0]), eval_args(e, 1));
      case ExprKind::kTest: {
        const Value v = eval(*e.children[0]);
        return Value(apply_test(e.name, v, eval_args(e, 1)) != e.negated);
      }
      case ExprKind::kUnary: {
        Value v = eval(*e.children[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (!v.is_number()) fail(e.line, "bad operand type for unary " + e.name + ": " + std::string(v.type_name()));
        if (e.name == "+") return v;
        if (v.is_int() && v.as_int() == INT64_MIN) fail(e.line, "integer overflow in unary -");
        return v.is_int() ? Value(-v.as_int()) : Value(-v.as_number());
      }
      case ExprKind::kBinary: {
        if (e.name == "and") {
          Value a = eval(*e.children[0]);
          return a.truthy() ? eval(*e.children[1]) : a;
        }
        if (e.name == "or") {
          Value a = eval(*e.children[0]);
          return a.truthy() ? a : eval(*e.children[1]);
        }
        return binary_op(e.name, eval(*e.children[0]), eval(*e.children[1]));
      }
      case ExprKind::kCond:
        if (eval(*e.children[1]).truthy()) return eval(*e.children[0]);
        return e.children[2] ? eval(*e.children[2]) : Value();
    }
    return {};
  }

  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string* out_;
  int depth_ = 0;
};

}  // namespace

Template Template::parse(std::string_view source) {
  Template t;
  t.body_ = std::make_shared<const Body>(jinja::parse(lex(source)));
  return t;
}

std::string Template::render(const Dict& globals) const {
  std::string out;
  Interpreter in(out);
  in.push_scope();
  const Dict builtins = builtin_globals();
  for (const auto& [k, v] : builtins.items()) in.define(k, v);
  for (const auto& [k, v] : globals.items()) in.define(k, v);
  in.push_scope();  // the template's own top-level `set`s shadow the globals
  in.exec(*body_);
  return out;
}

}  // namespace lightboat::tokenizer::jinja
