// Syntax tree and parser of the Jinja subset (see jinja_template.h).
//
// Expressions, lowest precedence first, as Jinja2 parses them:
//   a if c else b  |  or  |  and  |  not  |  == != < <= > >= in, not in  |  + -  |  ~  |  * / // %
//   |  **  |  unary - +  |  primary with postfix .attr [index] [a:b:c] (call) then | filter, is test
// (so `'x' + s | trim + 'y'` trims only s, as in Jinja2).
// Statements: if/elif/else, for (tuple targets, `if` filter, else), set (name, tuple, ns.attr,
// block form), macro with defaults, generation (renders its body), break, continue.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_value.h"

namespace lightboat::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,  // value
  kName,     // name
  kList,     // children: items
  kTuple,    // children: items (a list at run time)
  kDict,     // children: key, value, key, value …
  kAttr,     // children[0].name
  kIndex,    // children[0][children[1]]
  kSlice,    // children[0][c1:c2:c3], absent bounds are nullptr
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs)
  kTest,     // children[0] is [not] name(children[1..])
  kUnary,    // name: "-", "+" or "not"
  kBinary,   // name: operator; "and"/"or" short-circuit
  kCond,     // children[0] if children[1] else children[2] (nullptr: undefined)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value value;           // kLiteral
  std::string name;      // name, attribute, filter, test or operator
  bool negated = false;  // kTest: `is not`
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class NodeKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kGeneration, kBreak, kContinue };

struct IfBranch {
  ExprPtr cond;  // nullptr for else
  Body body;
};

struct Node {
  NodeKind kind = NodeKind::kText;
  int line = 0;
  std::string text;                                     // kText
  ExprPtr expr;                                         // kOutput value, kSet value, kFor iterable
  ExprPtr target;                                       // kSet / kSetBlock / kFor: a kName, kTuple of names, or kAttr
  ExprPtr filter;                                       // kFor: `for x in xs if cond`
  std::vector<IfBranch> branches;                       // kIf
  Body body;                                            // kFor, kSetBlock, kMacro, kGeneration
  Body else_body;                                       // kFor
  std::string name;                                     // kMacro
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: name, default (nullptr: none)
};

// Throws Error(kFormat) naming the line for a syntax error or a tag outside the subset.
Body parse(const std::vector<Token>& tokens);

}  // namespace lightboat::tokenizer::jinja
