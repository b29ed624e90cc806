// A byte-level BPE tokenizer as tokenizer.json describes it (Hugging Face's format, as
// GPT-2, Llama 3, Qwen 2 and most current decoders ship it), reduced to what encoding and
// decoding use. Reading refuses what shrink does not implement, naming the key, rather
// than tokenizing differently from the reference library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace shrink::text {

/// A token matched in the text before anything else runs (tokenizer.json "added_tokens").
struct added_token {
    uint32_t id = 0;
    std::string content;
    bool special = false;     // skipped by decode(skip_special)
    bool normalized = false;  // matched after normalization rather than in the raw text
};

/// A regular-expression split of the pre-tokenizer: matches become pieces of their own,
/// as do the stretches between them (Hugging Face's "Isolated" behaviour), or the
/// matches are dropped ("Removed").
struct split_rule {
    std::string pattern;  // as tokenizer.json gives it (Oniguruma syntax)
    bool literal = false; // {"String": ...} rather than {"Regex": ...}
    bool remove_matches = false;
};

/// GPT-2's pre-tokenizer pattern, which ByteLevel applies when its use_regex is true
/// (Oniguruma syntax, like the patterns of Split steps).
extern const char* const gpt2_split_pattern;

struct tokenizer_spec {
    std::filesystem::path file;  // for messages
    std::vector<added_token> added;
    bool nfc = false;  // normalizer NFC
    /// Pre-tokenization: the Split steps in order, then the ByteLevel step, which puts a
    /// space before every piece that does not start with one (add_prefix_space), splits
    /// each with GPT-2's pattern (use_regex) and maps each byte to its alphabet character.
    std::vector<split_rule> splits;
    bool add_prefix_space = false;
    bool byte_level_regex = true;
    /// The BPE model.
    std::unordered_map<std::string, uint32_t> vocab;  // token (byte-level alphabet) -> id
    std::vector<std::pair<std::string, std::string>> merges;  // by rank
    bool ignore_merges = false;  // a whole pre-token found in the vocabulary is one token
    std::optional<std::string> unk_token;
    bool fuse_unk = false;
};

/// The largest token id accepted: real vocabularies stay under 2^18; a hostile file must
/// not make the id table enormous.
constexpr uint32_t max_token_id = (1u << 24) - 1;

/// Reads `file` (a tokenizer.json). Throws input_error naming the file and the key, e.g.
/// "tokenizer.json: model.merges[12]: 'ab c' is not two tokens of the vocabulary".
tokenizer_spec read_tokenizer_json(const std::filesystem::path& file);
/// The same from text already read (`file` names it in messages).
tokenizer_spec parse_tokenizer_json(const std::string& json_text, const std::filesystem::path& file);

/// tokenizer.json text for `spec`, in the form Hugging Face's library writes it, which
/// it and shrink read back to the same tokenizer.
std::string write_tokenizer_json(const tokenizer_spec& spec);

}  // namespace shrink::text
