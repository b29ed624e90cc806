// Training a byte-level BPE vocabulary (GPT-2's pre-tokenizer) on a text, for the
// reference language model. Deterministic: the same text and options give the same
// tokenizer.json byte for byte.
#pragma once

#include "text/tokenizer_spec.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace shrink::text {

struct bpe_training {
    uint32_t vocab_size = 4096;  // the 256 bytes, the merges, then the special tokens
    uint32_t min_frequency = 2;  // a pair seen fewer times is never merged
    std::vector<std::string> special_tokens{"<|endoftext|>"};
};

/// Starts from the 256 byte tokens and adds, one merge at a time, the adjacent pair that
/// occurs most often in the text's pre-tokenized words (ties: the pair of lowest ids),
/// until the vocabulary has vocab_size tokens or no pair occurs min_frequency times.
tokenizer_spec train_bpe(std::string_view text, const bpe_training& options);

}  // namespace shrink::text
