// Small byte-level BPE tokenizers for the tokenizer fuzz targets and their seeds: a
// 400-token vocabulary trained (deterministically) on a few lines of mixed text, in the
// tokenizer.json forms GPT-2, Llama 3 and Qwen 2 use.
#pragma once

#include "text/bpe_trainer.hpp"

#include <string>

namespace shrink::fuzz {

inline const std::string& sample_corpus() {
    static const std::string text =
        "In the beginning God created the heaven and the earth. And God said, Let there be light: and there was light.\n"
        "I'm sure they'll say we've 1234 reasons, don't you?  Tabs\tand\u00a0spaces\u3000too.\r\n"
        "日本語のテキスト, Ελληνικά, русский, العربية, e\u0301 \u00e9, emoji 😀👍🏽 and <|endoftext|> markers.\n";
    return text;
}

enum class tokenizer_style { gpt2, llama3, qwen2 };

inline text::tokenizer_spec sample_tokenizer(tokenizer_style style) {
    text::bpe_training options;
    options.vocab_size = 400;
    text::tokenizer_spec spec = text::train_bpe(sample_corpus(), options);
    const char* llama3 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const char* qwen2 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    if (style != tokenizer_style::gpt2) {
        spec.splits.push_back({style == tokenizer_style::llama3 ? llama3 : qwen2, false, false});
        spec.byte_level_regex = false;
        spec.ignore_merges = style == tokenizer_style::llama3;
        spec.nfc = style == tokenizer_style::qwen2;
        spec.added.push_back({uint32_t(spec.vocab.size()), "<|begin_of_text|>", true, false});
        spec.added.push_back({uint32_t(spec.vocab.size() + 1), "LORD God", false, true});
    }
    return spec;
}

}  // namespace shrink::fuzz
