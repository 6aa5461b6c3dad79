// Token texts llama.cpp gives special roles by their text alone (llama_vocab::impl::load), for
// vocabularies whose metadata does not name those tokens. Data, kept apart from the loading logic.
// The DeepSeek entries use full-width bars (U+FF5C) and U+2581 as their vocabularies do.
#pragma once

#include <string_view>

namespace lightboat::tokenizer::special_texts {

inline constexpr std::string_view kDeepseekEndOfSentence = "<｜end▁of▁sentence｜>";

inline constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",        "<|endoftext|>",     "<|end_of_text|>",
    "<EOT>",      "_<EOT>",     "[EOT]",   kDeepseekEndOfSentence, "<end_of_utterance>"};
inline constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
inline constexpr std::string_view kFimPreTexts[] = {"<|fim_prefix|>",  "<fim-prefix>", "<fim_prefix>",
                                                    "<｜fim▁begin｜>", "<PRE>",        "▁<PRE>",
                                                    "<|code_prefix|>", "<|prefix|>"};
inline constexpr std::string_view kFimSufTexts[] = {"<|fim_suffix|>",  "<fim-suffix>", "<fim_suffix>",
                                                    "<｜fim▁hole｜>",  "<SUF>",        "▁<SUF>",
                                                    "<|code_suffix|>", "<|suffix|>"};
inline constexpr std::string_view kFimMidTexts[] = {"<|fim_middle|>",  "<fim-middle>", "<fim_middle>",
                                                    "<｜fim▁end｜>",   "<MID>",        "▁<MID>",
                                                    "<|code_middle|>", "<|middle|>"};
inline constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
inline constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                                    "<reponame>"};
inline constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
inline constexpr std::string_view kEogTexts[] = {"<|eot_id|>",
                                                 "<|im_end|>",
                                                 "<|end|>",
                                                 "<|return|>",
                                                 "<|call|>",
                                                 "<|flush|>",
                                                 "<|calls|>",
                                                 "<end_of_turn>",
                                                 "<|endoftext|>",
                                                 "</s>",
                                                 "<|eom_id|>",
                                                 "<EOT>",
                                                 "_<EOT>",
                                                 "[EOT]",
                                                 "[EOS]",
                                                 "<|end_of_text|>",
                                                 "<end_of_utterance>",
                                                 "<eos>",
                                                 "<turn|>",
                                                 "<|tool_response>",
                                                 kDeepseekEndOfSentence,
                                                 "[e~["};

// gpt-oss channel markers.
inline constexpr std::string_view kAlwaysRenderedTexts[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

}  // namespace lightboat::tokenizer::special_texts
