// Chat formatting with the real chat templates of the model families we serve (the text of each
// model's tokenizer.chat_template, i.e. its Hugging Face tokenizer_config.json chat_template), on
// a 3-turn conversation with a system message. Expected strings follow each template's semantics
// under Jinja2 (trim_blocks, lstrip_blocks) and agree with llama.cpp's --jinja output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "fixtures.h"
#include "gguf/reader.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::tokenizer {
namespace {

// meta-llama/Llama-3.2-1B-Instruct and -3B-Instruct.
const char* const kLlama32 = R"TPL({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)TPL";

// meta-llama/Meta-Llama-3-8B-Instruct (the first Llama 3 template).
const char* const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// microsoft/Phi-3.5-mini-instruct (and Phi-3-mini-4k/128k-instruct since their mid-2024 update).
const char* const kPhi35 =
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + "
    "'<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + "
    "'<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}"
    "{{ eos_token }}{% endif %}";

// microsoft/Phi-3-mini-4k-instruct as first released: no system branch (the message is dropped).
const char* const kPhi3MiniOriginal =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + "
    "message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}"
    "{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}";

// google/gemma-2-2b-it: rejects a system message outright.
const char* const kGemma2 =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

// Qwen/Qwen2.5-0.5B…7B-Instruct.
const char* const kQwen25 = R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)TPL";

// HuggingFaceTB/SmolLM2-135M/360M/1.7B-Instruct.
const char* const kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// A fixed clock for strftime_now: 2024-07-26 12:00 UTC (the same date in every time zone ±11 h).
constexpr std::time_t kJul26 = 1721995200;

const std::vector<ChatMessage> kConversation = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};

ChatTemplate make(const char* source, const char* bos, const char* eos) {
  return ChatTemplate({.source = source, .bos_token = bos, .eos_token = eos});
}

std::string render(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool gen = true) {
  ChatPrompt p = t.apply(messages, {.add_generation_prompt = gen, .now = kJul26});
  EXPECT_EQ(p.warning, "");
  return p.text;
}

TEST(ChatTemplate, Llama32) {
  const ChatTemplate t = make(kLlama32, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(t.family(), ChatFamily::kLlama3);
  EXPECT_TRUE(t.supports_system_role());
  EXPECT_EQ(render(t, kConversation),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "You are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a system message the header block is still there, with an empty system text.
  EXPECT_EQ(render(t, {{"user", "Hi"}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama3Original) {
  const ChatTemplate t = make(kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(t.family(), ChatFamily::kLlama3);
  EXPECT_EQ(render(t, kConversation),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Phi35Mini) {
  const ChatTemplate t = make(kPhi35, "<s>", "<|endoftext|>");
  EXPECT_EQ(t.family(), ChatFamily::kPhi3);
  EXPECT_TRUE(t.supports_system_role());
  EXPECT_EQ(render(t, kConversation),
            "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n"
            "<|user|>\nAnother question<|end|>\n<|assistant|>\n");
  // Without the generation prompt the template closes with EOS.
  EXPECT_EQ(render(t, {{"user", "Hi"}}, false), "<|user|>\nHi<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, Phi3MiniOriginalFoldsSystem) {
  const ChatTemplate t = make(kPhi3MiniOriginal, "<s>", "<|endoftext|>");
  EXPECT_EQ(t.family(), ChatFamily::kPhi3);
  EXPECT_FALSE(t.supports_system_role());  // it would silently drop the system message
  EXPECT_EQ(render(t, kConversation),
            "<s><|user|>\nYou are a helpful assistant\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n"
            "<|user|>\nAnother question<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, Gemma2FoldsSystemIntoFirstUserTurn) {
  const ChatTemplate t = make(kGemma2, "<bos>", "<eos>");
  EXPECT_EQ(t.family(), ChatFamily::kGemma);
  EXPECT_FALSE(t.supports_system_role());  // the template raises "System role not supported"
  EXPECT_EQ(render(t, kConversation),
            "<bos><start_of_turn>user\nYou are a helpful assistant\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there<end_of_turn>\n"
            "<start_of_turn>user\nWho are you<end_of_turn>\n"
            "<start_of_turn>model\nI am an assistant<end_of_turn>\n"
            "<start_of_turn>user\nAnother question<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplate, Qwen25) {
  const ChatTemplate t = make(kQwen25, "", "<|im_end|>");
  EXPECT_EQ(t.family(), ChatFamily::kChatMl);
  EXPECT_EQ(render(t, kConversation),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  // No system message: Qwen's default one.
  EXPECT_EQ(render(t, {{"user", "Hi"}}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, SmolLM2) {
  const ChatTemplate t = make(kSmolLM2, "<|im_start|>", "<|im_end|>");
  EXPECT_EQ(t.family(), ChatFamily::kChatMl);
  EXPECT_EQ(render(t, kConversation),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(t, {{"user", "Hi"}}),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

// What `run --chat` relies on: the prompt for turn k is a prefix of the prompt for turn k+1
// (the conversation so far plus the answer), so only the new turn is evaluated.
TEST(ChatTemplate, EachTurnExtendsThePreviousPrompt) {
  for (const char* source : {kLlama32, kLlama3, kPhi35, kPhi3MiniOriginal, kGemma2, kQwen25, kSmolLM2}) {
    const ChatTemplate t = make(source, "<s>", "</s>");
    for (size_t n = 2; n + 2 <= kConversation.size(); n += 2) {
      const std::vector<ChatMessage> before(kConversation.begin(), kConversation.begin() + static_cast<ptrdiff_t>(n));
      const std::vector<ChatMessage> after(kConversation.begin(),
                                           kConversation.begin() + static_cast<ptrdiff_t>(n + 2));
      const std::string a = render(t, before), b = render(t, after);
      EXPECT_EQ(b.substr(0, a.size()), a) << chat_family_name(t.family()) << " turn " << n;
    }
  }
}

TEST(ChatTemplate, StripsTheBosTheTokenizerAdds) {
  ChatTemplate t({.source = kGemma2, .bos_token = "<bos>", .eos_token = "<eos>", .strip_bos = true});
  EXPECT_EQ(t.apply({{{"user", "Hi"}}}).text, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
  ChatTemplate phi({.source = kPhi35, .bos_token = "<s>", .eos_token = "<|endoftext|>", .strip_eos = true});
  EXPECT_EQ(phi.apply({{{"user", "Hi"}}}, {.add_generation_prompt = false}).text, "<|user|>\nHi<|end|>\n");
}

TEST(ChatTemplate, NoTemplateFallsBackToChatMlWithAWarning) {
  const ChatTemplate t = make("", "<s>", "</s>");
  EXPECT_FALSE(t.renders());
  EXPECT_NE(t.warning().find("no chat template"), std::string::npos);
  const ChatPrompt p = t.apply({{{"system", "S"}, {"user", "Hi"}}});
  EXPECT_EQ(p.text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(p.warning.find("ChatML"), std::string::npos);
}

TEST(ChatTemplate, BrokenTemplateFallsBackToItsFamily) {
  // Does not parse (an unsupported tag): the built-in Gemma format, with a warning.
  const ChatTemplate t = make("{% include 'x' %}<start_of_turn>", "<bos>", "<eos>");
  EXPECT_FALSE(t.renders());
  EXPECT_NE(t.warning().find("include"), std::string::npos);
  const ChatPrompt p = t.apply({{{"system", "S"}, {"user", "Hi"}}});
  EXPECT_EQ(p.text, "<bos><start_of_turn>user\nS\nHi<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_NE(p.warning.find("gemma"), std::string::npos);
  // Parses but fails when rendered: an unknown family formats as ChatML.
  const ChatTemplate u = make("{{ messages | no_such_filter }}", "", "");
  EXPECT_TRUE(u.renders());
  const ChatPrompt q = u.apply({{{"user", "Hi"}}});
  EXPECT_EQ(q.text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(q.warning.find("no_such_filter"), std::string::npos);
}

TEST(ChatTemplate, DetectsFamilies) {
  EXPECT_EQ(detect_chat_family(kLlama32), ChatFamily::kLlama3);
  EXPECT_EQ(detect_chat_family(kPhi35), ChatFamily::kPhi3);
  EXPECT_EQ(detect_chat_family(kGemma2), ChatFamily::kGemma);
  EXPECT_EQ(detect_chat_family(kQwen25), ChatFamily::kChatMl);
  EXPECT_EQ(detect_chat_family(kSmolLM2), ChatFamily::kChatMl);
  EXPECT_EQ(detect_chat_family("{{ '[INST] ' + m + ' [/INST]' }}"), ChatFamily::kMistral);
  EXPECT_EQ(detect_chat_family("{{ messages }}"), ChatFamily::kUnknown);
  EXPECT_EQ(chat_family_name(ChatFamily::kUnknown), "unknown");
}

// Further templates from llama.cpp's tests/test-chat-template.cpp, whose expected outputs there
// (llama.cpp's Jinja path) these reproduce: renderer coverage beyond our families.
TEST(ChatTemplate, LlamaCppCases) {
  struct Case {
    const char* name;
    const char* source;
    const char* eos;
    const char* expected;
  };
  const Case cases[] = {
      {"mistral v1 (system message, loop.first, is defined)",
       "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    "
       "{%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n"
       "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != "
       "(loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation "
       "roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == "
       "'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + "
       "system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            "
       "{{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == "
       "'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        "
       "{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional "
       "system message!') }}\n    {%- endif %}\n{%- endfor %}\n",
       "</s>",
       " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an "
       "assistant   </s> [INST] Another question [/INST]"},
      {"deepseek coder (namespace, newline control)",
       "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n"
       "{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n    {%- if message['role'] == "
       "'system' -%}\n        {%- set ns.found = true -%}\n    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}"
       "{%- if not ns.found -%}\n{{'You are an AI programming assistant, utilizing the Deepseek Coder model, "
       "developed by Deepseek Company, and you only answer questions related to computer science. For politically "
       "sensitive questions, security and privacy issues, and other non-computer science questions, you will "
       "refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == "
       "'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n"
       "{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n{{'### Response:\\n' + "
       "message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
       "{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}",
       "",
       "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n### Instruction:\n"
       "Who are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\nAnother question\n"
       "### Response:\n"},
      {"command-r (str.strip, comparisons with false)",
       "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
       "system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set "
       "system_message = 'You are Command-R, a brilliant, sophisticated, AI-assistant trained to assist human users "
       "by providing thorough responses. You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}"
       "{% set system_message = false %}{% endif %}{% if system_message != false %}{{ "
       "'<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for "
       "message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
       "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set "
       "content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' "
       "+ content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ "
       "'<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}"
       "{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
       "",
       "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|>"
       "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi "
       "there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|>"
       "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
       "<|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
  };
  for (const Case& c : cases) {
    const ChatTemplate t = make(c.source, "", c.eos);
    EXPECT_EQ(render(t, kConversation), c.expected) << c.name;
  }
}

// From a real GGUF (the Phi-3 vocabulary, which carries the first Phi-3-mini template): the
// template's own {{ bos_token }} is dropped because the tokenizer adds BOS, so the prompt has one.
TEST(ChatTemplate, FromGgufHasExactlyOneBos) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto reader = gguf::Reader::open((testing::fixtures_dir() / "tokenizer" / "ggml-vocab-phi-3.gguf").string());
  const Tokenizer tok = Tokenizer::from_gguf(*reader);
  const ChatTemplate t = ChatTemplate::from_gguf(*reader, tok);
  EXPECT_TRUE(t.renders());
  EXPECT_EQ(t.family(), ChatFamily::kPhi3);
  const ChatPrompt p = t.apply({{{"system", "Be brief."}, {"user", "Hi"}}});
  EXPECT_EQ(p.warning, "");
  EXPECT_EQ(p.text, "<|user|>\nBe brief.\nHi<|end|>\n<|assistant|>\n");
  const std::vector<int32_t> ids = tok.encode(p.text, true, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], tok.bos());
  EXPECT_NE(ids[1], tok.bos());
  EXPECT_EQ(ids[1], tok.find_token("<|user|>").value_or(-1));
}

TEST(ChatTemplate, EmptyConversationIsAnError) {
  const ChatTemplate t = make(kSmolLM2, "", "");
  EXPECT_THROW(t.apply({}), Error);
}

}  // namespace
}  // namespace lightboat::tokenizer
