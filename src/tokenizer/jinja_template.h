// A Jinja renderer for the subset that GGUF chat templates (tokenizer.chat_template, copied from
// Hugging Face's tokenizer_config.json) are written in. Hugging Face renders these with Jinja2
// (trim_blocks, lstrip_blocks, Python values); this reproduces that output byte for byte for the
// constructs real templates use:
//  * text, {{ expr }}, {# comments #}, whitespace control (jinja_lexer.h);
//  * if/elif/else, for (over lists, dicts, strings; tuple targets; `if` filter; else; `loop.index0`
//    `index` `first` `last` `length` `revindex` `revindex0` `previtem` `nextitem`), set (also
//    `ns.attr` and block form), macro, break/continue, generation;
//  * literals, lists, dicts, tuples, attribute/subscript/slice (`messages[1:]`, `[::-1]`), calls,
//    arithmetic, `~` and `+` concatenation, comparisons, `in`, and/or/not, conditional expressions;
//  * filters: trim length count upper lower title capitalize default first last join list
//    string int float abs round tojson safe escape replace reverse sort unique items dictsort
//    selectattr rejectattr select reject map indent sum min max;
//  * tests: defined undefined none string number integer float boolean true false mapping
//    iterable sequence callable odd even divisibleby eq ne lt le gt ge in lower upper;
//  * str methods (strip lstrip rstrip split startswith endswith upper lower title capitalize
//    replace find count join), dict methods (items keys values get), list.append/pop/index;
//  * globals: range, namespace, dict, raise_exception (plus whatever the caller passes, e.g.
//    strftime_now).
// Everything else is an error naming the template line, never undefined behaviour.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace lightboat::tokenizer::jinja {

class Template {
 public:
  // Throws Error(kFormat) naming the line for a syntax error or unsupported construct.
  static Template parse(std::string_view source);

  // Renders with `globals` (messages, add_generation_prompt, bos_token …) in scope. Throws
  // Error(kInvalidArgument) for a runtime error or a raise_exception() call, with its message.
  std::string render(const Dict& globals) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace lightboat::tokenizer::jinja
