// A byte-level BPE tokenizer: encodes text to the ids Hugging Face's tokenizers library
// gives for the same tokenizer.json (checked over the whole KJV text and hand-picked
// Unicode in tests/interop/tokenizer_parity), and decodes ids back.
//
// encode runs the library's pipeline without its post-processor (no BOS or EOS is added):
//   1. added tokens found in the raw text (those not "normalized"), leftmost-longest;
//   2. NFC on the rest, if the normalizer says so, then the normalized added tokens;
//   3. the pre-tokenizer's regular-expression splits, in order, on each stretch between
//      added tokens, then the byte-level step (each byte as one alphabet character);
//   4. BPE on each piece: the pair of adjacent symbols with the lowest merge rank is
//      merged first, the leftmost of equal ranks, until no pair has a merge.
#pragma once

#include "text/tokenizer_spec.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shrink::text {

class tokenizer {
  public:
    /// Compiles the spec's patterns and merge table. Throws input_error naming the file
    /// and key of a pattern that does not compile.
    explicit tokenizer(tokenizer_spec spec);
    ~tokenizer();
    tokenizer(tokenizer&&) noexcept;
    tokenizer& operator=(tokenizer&&) noexcept;

    /// tokenizer.json, or a folder holding one.
    static tokenizer from_file(const std::filesystem::path& path);

    /// The ids of `utf8` (valid UTF-8, else input_error naming the byte offset). Thread-safe.
    std::vector<uint32_t> encode(std::string_view utf8) const;
    /// The pieces of `utf8` that BPE encodes one by one (raw bytes, before the byte-level
    /// alphabet), added tokens left out: what a vocabulary is trained on.
    std::vector<std::string> pre_tokenize(std::string_view utf8) const;
    /// The text of `ids`; bytes that do not form UTF-8 become U+FFFD, as in the library.
    /// Throws input_error on an id the tokenizer does not have.
    std::string decode(const std::vector<uint32_t>& ids, bool skip_special = false) const;

    /// The bytes token `id` stands for (its alphabet characters as bytes; an added
    /// token's own UTF-8).
    std::string token_bytes(uint32_t id) const;
    /// One more than the largest id.
    uint32_t vocab_size() const;
    /// The token string of `id` (byte-level alphabet for the model's own tokens).
    const std::string& token(uint32_t id) const;
    std::optional<uint32_t> id_of(std::string_view token) const;
    const tokenizer_spec& spec() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace shrink::text
