// Lexer of the Jinja subset (see jinja_template.h): template text -> a flat token stream of
// literal text and the tokens inside {{ … }} and {% … %} tags. Comments {# … #} are dropped.
//
// Whitespace follows Jinja2 as Hugging Face configures it for chat templates
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//  * `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all after it;
//  * trim_blocks: the first newline after a block or comment tag is removed (`+%}` keeps it);
//  * lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag are
//    removed (`{%+` keeps them);
//  * one trailing newline at the end of the template is removed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lightboat::tokenizer::jinja {

enum class TokenKind {
  kText,        // literal template text (after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword
  kString,      // string literal, escapes already decoded
  kInt,
  kFloat,
  kOp,   // operator or punctuation: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } . , : |
  kEnd,  // end of template
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;  // text, name, decoded string or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;  // 1-based line of the template where the token starts
};

// Throws Error(kFormat) naming the line for an unclosed tag, comment or string, or a character
// that is no token.
std::vector<Token> lex(std::string_view source);

}  // namespace lightboat::tokenizer::jinja
