#include "tokenizer/jinja_parser.h"

#include <initializer_list>

#include "base/error.h"

namespace lightboat::tokenizer::jinja {
namespace {

// Nesting deeper than this (brackets, unary chains, blocks) is refused rather than recursed into.
constexpr int kMaxNesting = 100;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Body parse_template() {
    Body body = parse_body({});
    if (peek().kind != TokenKind::kEnd) fail("unexpected {% " + block_keyword() + " %}");
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& peek(size_t ahead = 0) const {
    const size_t i = std::min(pos_ + ahead, t_.size() - 1);
    return t_[i];
  }
  const Token& take() {
    const Token& t = t_[pos_];
    if (pos_ + 1 < t_.size()) ++pos_;
    return t;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorKind::kFormat, "chat template line " + std::to_string(peek().line) + ": " + what);
  }
  bool is_op(std::string_view op, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOp && peek(ahead).text == op;
  }
  bool is_name(std::string_view name, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kName && peek(ahead).text == name;
  }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    take();
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    take();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) fail("expected '" + std::string(op) + "', found '" + peek().text + "'");
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::kName) fail("expected a name, found '" + peek().text + "'");
    return take().text;
  }
  void expect_block_end() {
    if (peek().kind != TokenKind::kBlockEnd) fail("expected '%}', found '" + peek().text + "'");
    take();
  }
  // The keyword of the block tag at the cursor ("" when the cursor is not at one).
  std::string block_keyword() const {
    return peek().kind == TokenKind::kBlockBegin && peek(1).kind == TokenKind::kName ? peek(1).text : "";
  }
  // Counts one level of recursion for the lifetime of the guard.
  struct Nest {
    Parser* p;
    explicit Nest(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxNesting) p->fail("nested too deeply");
    }
    ~Nest() { --p->depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----
  // Parses nodes until a block tag whose keyword is in `ends` (left unconsumed) or the end.
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Body body;
    for (;;) {
      const Token& t = peek();
      if (t.kind == TokenKind::kEnd) {
        if (ends.size() != 0) fail("missing {% " + std::string(*(ends.end() - 1)) + " %}");
        return body;
      }
      if (t.kind == TokenKind::kText) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kText;
        n->line = t.line;
        n->text = take().text;
        body.push_back(std::move(n));
      } else if (t.kind == TokenKind::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kOutput;
        n->line = take().line;
        n->expr = parse_expr();
        if (peek().kind != TokenKind::kVarEnd) fail("expected '}}', found '" + peek().text + "'");
        take();
        body.push_back(std::move(n));
      } else {
        const std::string kw = block_keyword();
        for (std::string_view e : ends) {
          if (kw == e) return body;
        }
        body.push_back(parse_statement());
      }
    }
  }

  NodePtr parse_statement() {
    const Nest nest(this);
    take();  // {%
    auto n = std::make_unique<Node>();
    n->line = peek().line;
    const std::string kw = expect_name();
    if (kw == "if") {
      n->kind = NodeKind::kIf;
      ExprPtr cond = parse_expr();
      for (;;) {
        expect_block_end();
        Body body = parse_body({"elif", "else", "endif"});
        n->branches.push_back({std::move(cond), std::move(body)});
        take();  // {%
        const std::string end = take().text;
        if (end == "endif") break;
        if (end == "else") {
          expect_block_end();
          n->branches.push_back({nullptr, parse_body({"endif"})});
          take();
          take();
          break;
        }
        cond = parse_expr();  // elif
      }
    } else if (kw == "for") {
      n->kind = NodeKind::kFor;
      n->target = parse_targets();
      if (!accept_name("in")) fail("expected 'in' in a for loop");
      n->expr = parse_or_tuple(/*allow_cond=*/false);
      if (accept_name("if")) n->filter = parse_or();
      accept_name("recursive");
      expect_block_end();
      n->body = parse_body({"else", "endfor"});
      take();
      if (take().text == "else") {
        expect_block_end();
        n->else_body = parse_body({"endfor"});
        take();
        take();
      }
    } else if (kw == "set") {
      n->target = parse_targets();
      if (accept_op("=")) {
        n->kind = NodeKind::kSet;
        n->expr = parse_or_tuple(/*allow_cond=*/true);
      } else {
        n->kind = NodeKind::kSetBlock;
        expect_block_end();
        n->body = parse_body({"endset"});
        take();
        take();
      }
    } else if (kw == "macro") {
      n->kind = NodeKind::kMacro;
      n->name = expect_name();
      expect_op("(");
      while (!accept_op(")")) {
        std::string param = expect_name();
        ExprPtr def = accept_op("=") ? parse_expr() : nullptr;
        n->params.emplace_back(std::move(param), std::move(def));
        if (!is_op(")")) expect_op(",");
      }
      expect_block_end();
      n->body = parse_body({"endmacro"});
      take();
      take();
    } else if (kw == "generation") {
      n->kind = NodeKind::kGeneration;
      expect_block_end();
      n->body = parse_body({"endgeneration"});
      take();
      take();
    } else if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? NodeKind::kBreak : NodeKind::kContinue;
    } else {
      fail("unsupported tag {% " + kw + " %}");
    }
    expect_block_end();
    return n;
  }

  // `x`, `a, b`, `(a, b)` or `ns.attr`: what for and set assign to.
  ExprPtr parse_targets() {
    const int line = peek().line;
    const bool paren = accept_op("(");
    auto first = make(ExprKind::kName, line);
    first->name = expect_name();
    if (accept_op(".")) {
      auto attr = make(ExprKind::kAttr, line);
      attr->name = expect_name();
      attr->children.push_back(std::move(first));
      return attr;
    }
    if (!is_op(",")) {
      if (paren) expect_op(")");
      return first;
    }
    auto tuple = make(ExprKind::kTuple, line);
    tuple->children.push_back(std::move(first));
    while (accept_op(",")) {
      auto name = make(ExprKind::kName, line);
      name->name = expect_name();
      tuple->children.push_back(std::move(name));
    }
    if (paren) expect_op(")");
    return tuple;
  }

  // ---- expressions ----
  ExprPtr parse_expr() { return parse_cond(); }

  // An expression or a bare tuple `a, b` (for loop iterables and set values).
  ExprPtr parse_or_tuple(bool allow_cond) {
    const int line = peek().line;
    ExprPtr first = allow_cond ? parse_cond() : parse_or();
    if (!is_op(",")) return first;
    auto tuple = make(ExprKind::kTuple, line);
    tuple->children.push_back(std::move(first));
    while (accept_op(",")) tuple->children.push_back(allow_cond ? parse_cond() : parse_or());
    return tuple;
  }

  ExprPtr parse_cond() {
    const Nest nest(this);
    ExprPtr then = parse_or();
    while (is_name("if")) {
      const int line = take().line;
      auto e = make(ExprKind::kCond, line);
      e->children.push_back(std::move(then));
      e->children.push_back(parse_or());
      e->children.push_back(accept_name("else") ? parse_cond() : nullptr);
      then = std::move(e);
    }
    return then;
  }

  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(ExprKind::kBinary, line);
    e->name = std::move(op);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const int line = take().line;
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const int line = take().line;
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    const Nest nest(this);
    if (is_name("not")) {
      auto e = make(ExprKind::kUnary, take().line);
      e->name = "not";
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    for (;;) {
      const int line = peek().line;
      std::string op;
      if (peek().kind == TokenKind::kOp &&
          (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">="))) {
        op = take().text;
      } else if (is_name("in")) {
        take();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        take();
        take();
        op = "not in";
      } else {
        return left;
      }
      left = binary(op, std::move(left), parse_math1(), line);
    }
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = take();
      left = binary(t.text, std::move(left), parse_concat(), t.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const int line = take().line;
      left = binary("~", std::move(left), parse_math2(), line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = take();
      left = binary(t.text, std::move(left), parse_pow(), t.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary();
    while (is_op("**")) {
      const int line = take().line;
      left = binary("**", std::move(left), parse_unary(), line);
    }
    return left;
  }

  // As in Jinja2, a sign binds tighter than filters: `-3 | abs` is abs(-3).
  ExprPtr parse_unary(bool with_filter = true) {
    const Nest nest(this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& t = take();
      e = make(ExprKind::kUnary, t.line);
      e->name = t.text;
      e->children.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token& t = take();
    if (t.kind == TokenKind::kString) {
      auto e = make(ExprKind::kLiteral, t.line);
      std::string s = t.text;
      // Adjacent string literals concatenate, as in Python.
      while (peek().kind == TokenKind::kString) s += take().text;
      e->value = Value(std::move(s));
      return e;
    }
    if (t.kind == TokenKind::kInt || t.kind == TokenKind::kFloat) {
      auto e = make(ExprKind::kLiteral, t.line);
      e->value = t.kind == TokenKind::kInt ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    if (t.kind == TokenKind::kName) {
      auto e = make(ExprKind::kLiteral, t.line);
      if (t.text == "true" || t.text == "True") {
        e->value = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->value = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->value = Value::none();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      return e;
    }
    if (t.kind == TokenKind::kOp && t.text == "(") {
      if (accept_op(")")) return make(ExprKind::kTuple, t.line);
      ExprPtr inner = parse_expr();
      if (accept_op(")")) return inner;
      auto tuple = make(ExprKind::kTuple, t.line);
      tuple->children.push_back(std::move(inner));
      while (accept_op(",")) {
        if (is_op(")")) break;
        tuple->children.push_back(parse_expr());
      }
      expect_op(")");
      return tuple;
    }
    if (t.kind == TokenKind::kOp && t.text == "[") {
      auto list = make(ExprKind::kList, t.line);
      while (!accept_op("]")) {
        list->children.push_back(parse_expr());
        if (!is_op("]")) expect_op(",");
      }
      return list;
    }
    if (t.kind == TokenKind::kOp && t.text == "{") {
      auto dict = make(ExprKind::kDict, t.line);
      while (!accept_op("}")) {
        dict->children.push_back(parse_expr());
        expect_op(":");
        dict->children.push_back(parse_expr());
        if (!is_op("}")) expect_op(",");
      }
      return dict;
    }
    --pos_;
    fail("unexpected '" + t.text + "'");
  }

  void parse_call_args(Expr& e) {
    while (!accept_op(")")) {
      if (peek().kind == TokenKind::kName && is_op("=", 1)) {
        std::string key = take().text;
        take();
        e.kwargs.emplace_back(std::move(key), parse_expr());
      } else {
        e.children.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      const int line = peek().line;
      if (accept_op(".")) {
        auto a = make(ExprKind::kAttr, line);
        a->name = peek().kind == TokenKind::kInt ? std::to_string(take().int_value) : expect_name();
        a->children.push_back(std::move(e));
        e = std::move(a);
      } else if (accept_op("[")) {
        e = parse_subscript(std::move(e), line);
      } else if (accept_op("(")) {
        auto c = make(ExprKind::kCall, line);
        c->children.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, int line) {
    ExprPtr parts[3];
    int colons = 0;
    while (!accept_op("]")) {
      if (accept_op(":")) {
        if (++colons > 2) fail("too many ':' in a slice");
        continue;
      }
      if (parts[colons]) fail("expected ':' or ']' in a subscript");
      parts[colons] = parse_expr();
    }
    if (colons == 0) {
      if (!parts[0]) fail("empty subscript");
      auto e = make(ExprKind::kIndex, line);
      e->children.push_back(std::move(obj));
      e->children.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(ExprKind::kSlice, line);
    e->children.push_back(std::move(obj));
    for (ExprPtr& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  ExprPtr parse_filters(ExprPtr e) {
    for (;;) {
      const int line = peek().line;
      if (accept_op("|")) {
        auto f = make(ExprKind::kFilter, line);
        f->name = expect_name();
        f->children.push_back(std::move(e));
        if (accept_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (accept_name("is")) {
        auto t = make(ExprKind::kTest, line);
        t->negated = accept_name("not");
        // `none`, `true`, `false` are keywords elsewhere but test names here.
        t->name = expect_name();
        t->children.push_back(std::move(e));
        if (accept_op("(")) {
          parse_call_args(*t);
        } else if (peek().kind == TokenKind::kString || peek().kind == TokenKind::kInt ||
                   peek().kind == TokenKind::kFloat ||
                   (peek().kind == TokenKind::kName && !is_name("and") && !is_name("or") && !is_name("else") &&
                    !is_name("if") && !is_name("in") && !is_name("not") && !is_name("is"))) {
          t->children.push_back(parse_primary());  // `x is divisibleby 3`, `x is sameas none`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) {
  return Parser(tokens).parse_template();
}

}  // namespace lightboat::tokenizer::jinja
