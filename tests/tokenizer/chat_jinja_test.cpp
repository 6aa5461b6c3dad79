// The Jinja renderer behind chat templates: whitespace control, expressions, filters, tests,
// loops and errors, each against what Jinja2 (trim_blocks, lstrip_blocks) renders.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "base/error.h"
#include "tokenizer/jinja_template.h"

namespace lightboat::tokenizer::jinja {
namespace {

Value msgs() {
  auto m = [](const char* role, const char* content) {
    Dict d;
    d.set("role", Value(role));
    d.set("content", Value(content));
    return Value::dict(std::move(d));
  };
  return Value::list({m("system", "S"), m("user", "U1"), m("assistant", "A1"), m("user", "U2")});
}

std::string render(const std::string& source) {
  Dict g;
  g.set("messages", msgs());
  g.set("name", Value("World"));
  g.set("n", Value(int64_t{7}));
  return Template::parse(source).render(g);
}

ErrorKind error_kind(const std::string& source, std::string* message = nullptr) {
  try {
    render(source);
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no error for " << source;
  return ErrorKind::kInternal;
}

TEST(Jinja, TextAndOutput) {
  EXPECT_EQ(render("Hello {{ name }}!"), "Hello World!");
  EXPECT_EQ(render("{{ 'a' + 'b' ~ n ~ none ~ true }}"), "ab7NoneTrue");
  EXPECT_EQ(render("{{ undefined_thing }}|{{ [1, 'x'] }}|{{ {'k': 1.5} }}"), "|[1, 'x']|{'k': 1.5}");
  EXPECT_EQ(render("{# a comment #}x"), "x");
  EXPECT_EQ(render("{{ '{{' }}{{ {'a': {'b': 2}}['a']['b'] }}"), "{{2");  // `}}` inside a dict
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before one goes.
  EXPECT_EQ(render("{% if true %}\n  yes\n  {% endif %}\nend"), "  yes\nend");
  EXPECT_EQ(render("x\n    {% if true %}y{% endif %}"), "x\ny");
  EXPECT_EQ(render("x  {% if true %}y{% endif %}"), "x  y");  // not at a line start: kept
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");                    // lstrip is for blocks only
  EXPECT_EQ(render("{%+ if true %}\n{%- endif %}x"), "x");
  EXPECT_EQ(render("a\n{%- if true -%}\n  b  \n{%- endif %}"), "ab");
  EXPECT_EQ(render("{% if true +%}\nkept{% endif %}"), "\nkept");
  EXPECT_EQ(render("  {# c #}\nx"), "x");
  EXPECT_EQ(render("end\n"), "end");  // one trailing newline dropped
}

TEST(Jinja, LoopsAndConditions) {
  EXPECT_EQ(
      render("{% for m in messages %}{{ loop.index0 }}{{ m.role[0] }}{% if not loop.last %},{% endif %}{% endfor %}"),
      "0s,1u,2a,3u");
  EXPECT_EQ(render("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}{{ m['content'] }} "
                   "{% endfor %}"),
            "1/2U1 2/2U2 ");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}"), "ab");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% elif i == 3 %}{% break %}{% endif %}"
                   "{{ i }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}"), "mid");
  EXPECT_EQ(render("{{ 'y' if n is odd else 'n' }}{{ 'x' if false }}"), "y");
  EXPECT_EQ(render("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }} {% endfor %}"),
            "- system user assistant ");
}

TEST(Jinja, ScopesAndNamespaces) {
  // A set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}"
                   "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }}{{ ns.n }}"),
            "True2");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages | length }}{{ messages[0].content }}"), "3U1");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set block %}x{{ n }}{% endset %}[{{ block }}]"), "[x7]");
  EXPECT_EQ(render("{% macro tag(name, close=false) %}<{{ '/' if close }}{{ name }}>{% endmacro %}"
                   "{{ tag('a') }}{{ tag('a', close=true) }}"),
            "<a></a>");
  EXPECT_EQ(render("{% generation %}g{% endgeneration %}"), "g");
}

TEST(Jinja, Operators) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }}"),
            "3 -4 1 2 3.5 1024 7");
  EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [1] + [2] }} {{ 'b' in 'abc' }} {{ 'z' not in ['a'] }} {{ 'k' in {'k': 0} }}"),
            "abab [1, 2] True True True");
  EXPECT_EQ(render("{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ none == none }} {{ not [] }} {{ [] or 'd' }} {{ 0 and 1 }}"),
            "True True True True d 0");
  EXPECT_EQ(render("{{ (messages[0]['role'] == 'user') != (0 % 2 == 0) }}"), "True");
}

TEST(Jinja, SubscriptsAndSlices) {
  EXPECT_EQ(render("{{ messages[-1].content }} {{ messages[9] is defined }} {{ messages[1:3] | length }}"),
            "U2 False 2");
  EXPECT_EQ(render("{{ 'hello'[1:4] }} {{ 'hello'[::-1] }} {{ 'hello'[-2:] }} {{ [1, 2, 3, 4][::2] }}"),
            "ell olleh lo [1, 3]");
  EXPECT_EQ(render("{{ 'héllo'[1] }}{{ 'héllo' | length }}"), "é5");  // by character, as Python
  EXPECT_EQ(render("{% for m in messages[::-1] %}{{ m.content }}{% endfor %}"), "U2A1U1S");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(render("[{{ '  x  ' | trim }}] {{ 'aBc' | upper }} {{ 'aBc' | lower }} {{ 'hi there' | title }}"),
            "[x] ABC abc Hi There");
  EXPECT_EQ(render("{{ messages | length }} {{ (messages | first).missing | default('d') }}"), "4 d");
  EXPECT_EQ(render("{{ missing | default('x') }} {{ '' | default('y', true) }} {{ [1, 2, 3] | join(', ') }}"),
            "x y 1, 2, 3");
  EXPECT_EQ(render("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }}"), "U1U2");
  EXPECT_EQ(render("{{ messages | rejectattr('role', 'in', ['user', 'system']) | list | length }}"), "1");
  EXPECT_EQ(render("{{ {'a': [1, 'é', none, true], 'b': 1.5} | tojson }}"),
            "{\"a\": [1, \"é\", null, true], \"b\": 1.5}");
  EXPECT_EQ(render("{{ {'a': [1]} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(render("{{ 'a\"\\n' | tojson }}"), "\"a\\\"\\n\"");
  EXPECT_EQ(render("{{ [3, 1, 2] | sort | join }} {{ [1, 1, 2] | unique | list }} {{ [1, 2] | reverse | list }}"),
            "123 [1, 2] [2, 1]");
  EXPECT_EQ(render("{{ '3' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float }} {{ -3 | abs }} {{ 2.567 | round(1) }}"),
            "4 0 2.5 3 2.6");
  EXPECT_EQ(render("{{ 'a\nb' | indent(2) }}|{{ '<&>' | escape }}|{{ 'aXbX' | replace('X', '-') }}"),
            "a\n  b|&lt;&amp;&gt;|a-b-");
  EXPECT_EQ(
      render("{{ [1, 2, 3] | sum }} {{ [4, 2, 9] | min }} {{ [4, 2, 9] | max }} {{ {'b': 1, 'a': 2} | dictsort }}"),
      "6 2 9 [['a', 2], ['b', 1]]");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(render("{{ n is defined }}{{ zz is undefined }}{{ none is none }}{{ 'x' is string }}{{ n is number }}"),
            "TrueTrueTrueTrueTrue");
  EXPECT_EQ(
      render("{{ messages[0] is mapping }}{{ messages is iterable }}{{ n is not string }}{{ 6 is divisibleby 3 }}"),
      "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ n is even }}{{ 1.5 is float }}{{ true is boolean }}{{ n is eq 7 }}{{ range is callable }}"),
            "FalseTrueTrueTrueTrue");
}

TEST(Jinja, Methods) {
  EXPECT_EQ(render("[{{ '  x '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n a'.lstrip() }}][{{ 'a \\n'.rstrip() }}]"),
            "[x][a][a][a]");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(
      render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.upper() }}{{ 'ab'.find('b') }}"),
      "TrueTrueABC1");
  EXPECT_EQ(render("{{ '-'.join(['a', 'b']) }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'hello world'.title() }}"),
            "a-b bba Hello World");
  EXPECT_EQ(render("{{ messages[0].get('role') }} {{ messages[0].get('x', 'd') }} {{ messages[0].keys() | list }}"),
            "system d ['role', 'content']");
  EXPECT_EQ(render("{% set l = [1] %}{% set _ = l.append(2) %}{{ l }} {{ l.pop() }} {{ l }}"), "[1, 2] 2 [1]");
  EXPECT_EQ(render("{{ '</think>x'.split('</think>')[-1].lstrip('\\n') }}"), "x");
}

TEST(Jinja, Errors) {
  std::string msg;
  EXPECT_EQ(error_kind("a\n{{ raise_exception('System role not supported') }}", &msg), ErrorKind::kInvalidArgument);
  EXPECT_NE(msg.find("System role not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_EQ(error_kind("{% if true %}x", &msg), ErrorKind::kFormat);
  EXPECT_NE(msg.find("endif"), std::string::npos) << msg;
  EXPECT_EQ(error_kind("{{ 'unclosed }}"), ErrorKind::kFormat);
  EXPECT_EQ(error_kind("{{ x "), ErrorKind::kFormat);
  EXPECT_EQ(error_kind("{# never closed"), ErrorKind::kFormat);
  EXPECT_EQ(error_kind("{% include 'x' %}", &msg), ErrorKind::kFormat);
  EXPECT_NE(msg.find("include"), std::string::npos) << msg;
  EXPECT_EQ(error_kind("{{ 1 + }}"), ErrorKind::kFormat);
  EXPECT_EQ(error_kind("{{ x | nope }}", &msg), ErrorKind::kInvalidArgument);
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
  EXPECT_EQ(error_kind("{{ 1 / 0 }}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{{ 'a' + 1 }}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{{ n() }}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", &msg), ErrorKind::kInvalidArgument);
  EXPECT_NE(msg.find("deep"), std::string::npos) << msg;
  EXPECT_EQ(error_kind("{{ 9223372036854775807 + 1 }}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{{ 3 ** 99 }}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{{ 'ab' * 100000000000 }}"), ErrorKind::kInvalidArgument);
  // Reference cycles are refused (shared ownership would never free them).
  EXPECT_EQ(error_kind("{% set l = [] %}{% set _ = l.append([1, l]) %}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{% set ns = namespace(a=[]) %}{% set ns.b = {'x': [ns]} %}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind("{% set l = [] %}{% set _ = l.append({'f': l.append}) %}"), ErrorKind::kInvalidArgument);
  EXPECT_EQ(render("{% set l = [] %}{% set m = [1] %}{% set _ = l.append(m) %}{% set _ = l.append(m) %}{{ l }}"),
            "[[1], [1]]");
  EXPECT_EQ(render("{{ (-1) ** 5 }} {{ 2 ** 62 }} {{ 0 ** 0 }}"), "-1 4611686018427387904 1");
  std::string deep(2000, '(');
  EXPECT_EQ(error_kind("{{ " + deep + "1" + std::string(2000, ')') + " }}", &msg), ErrorKind::kFormat);
  EXPECT_NE(msg.find("deep"), std::string::npos) << msg;
}

// Templates come from files: random token soup must give a rendering or an Error, never a crash
// or another exception type (std::bad_variant_access, out_of_range …).
TEST(Jinja, RandomTemplatesNeverCrash) {
  static const char* const kPieces[] = {
      "{{",
      "}}",
      "{%",
      "%}",
      "{%-",
      "-%}",
      "{#",
      "#}",
      " if ",
      " elif ",
      " else ",
      " endif ",
      " for ",
      " in ",
      " endfor ",
      " set ",
      " endset ",
      " macro ",
      " endmacro ",
      "messages",
      "m",
      "x",
      "loop",
      ".index0",
      ".role",
      "[",
      "]",
      "(",
      ")",
      "{",
      "}",
      "'a'",
      "\"",
      "|",
      "trim",
      "length",
      "join",
      "tojson",
      " is ",
      " not ",
      "defined",
      "none",
      "-",
      "+",
      "~",
      "*",
      "/",
      "//",
      "%",
      "**",
      "==",
      "!=",
      "<",
      "=",
      ",",
      ".",
      ":",
      "1",
      "-1",
      "2.5",
      "true",
      "namespace(",
      "range(",
      "raise_exception(",
      ".split(",
      ".strip(",
      "[1:]",
      "[::-1]",
      "\n",
      " and ",
      " or ",
      "text ",
      " break ",
      " continue ",
      " generation ",
      "items()",
      "selectattr(",
      "map(",
  };
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> piece(0, std::size(kPieces) - 1), count(1, 40);
  Dict g;
  g.set("messages", msgs());
  int rendered = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string src;
    for (size_t n = count(rng); n > 0; --n) src += kPieces[piece(rng)];
    try {
      Template::parse(src).render(g);
      ++rendered;
    } catch (const Error&) {
      // expected for most soups
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-Error exception " << e.what() << " for: " << src;
      break;
    }
  }
  EXPECT_GT(rendered, 50);  // the soup is not all syntax errors
}

}  // namespace
}  // namespace lightboat::tokenizer::jinja
