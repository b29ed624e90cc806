#include "text/bpe_trainer.hpp"
#include "text/byte_level.hpp"
#include "text/tokenizer.hpp"
#include "util/errors.hpp"

#include <map>
#include <unordered_map>
#include <unordered_set>

namespace shrink::text {

namespace {

uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }

struct word {
    std::vector<uint32_t> symbols;
    int64_t count;
};

}  // namespace

tokenizer_spec train_bpe(std::string_view text, const bpe_training& options) {
    const uint32_t specials = uint32_t(options.special_tokens.size());
    if (options.vocab_size < 256 + specials)
        throw input_error("a byte-level vocabulary needs at least " + std::to_string(256 + specials) + " tokens, got " +
                          std::to_string(options.vocab_size));
    tokenizer_spec spec;
    spec.file = "tokenizer.json";
    std::vector<std::string> token_of;
    for (unsigned b = 0; b < 256; ++b) {
        token_of.push_back(bytes_to_alphabet(std::string(1, char(b))));
        spec.vocab.emplace(token_of.back(), b);
    }

    // Words: GPT-2's pre-tokenization of the text (the tokenizer being trained, with no
    // merges yet), counted.
    std::vector<word> words;
    {
        std::map<std::string, int64_t> counts;  // ordered: word order, and so ties, never depend on hashing
        for (const std::string& piece : tokenizer(spec).pre_tokenize(text)) ++counts[piece];
        for (const auto& [bytes, count] : counts) {
            word w{{}, count};
            for (unsigned char b : bytes) w.symbols.push_back(b);
            words.push_back(std::move(w));
        }
    }
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::unordered_set<uint32_t>> where;
    auto count_pairs = [&](uint32_t w, int64_t sign) {
        const auto& s = words[w].symbols;
        for (size_t i = 0; i + 1 < s.size(); ++i) {
            const uint64_t k = pair_key(s[i], s[i + 1]);
            pair_count[k] += sign * words[w].count;
            if (sign > 0) where[k].insert(w);
        }
    };
    for (uint32_t w = 0; w < words.size(); ++w) count_pairs(w, +1);

    while (token_of.size() + specials < options.vocab_size) {
        uint64_t best = 0;
        int64_t best_count = 0;
        for (const auto& [k, c] : pair_count)
            if (c > best_count || (c == best_count && c > 0 && k < best)) {
                best = k;
                best_count = c;
            }
        if (best_count < int64_t(options.min_frequency)) break;
        const uint32_t a = uint32_t(best >> 32), b = uint32_t(best & 0xFFFFFFFFu), merged = uint32_t(token_of.size());
        token_of.push_back(token_of[a] + token_of[b]);
        spec.vocab.emplace(token_of.back(), merged);
        spec.merges.emplace_back(token_of[a], token_of[b]);
        const std::unordered_set<uint32_t> affected = std::move(where[best]);
        where.erase(best);
        for (uint32_t w : affected) {
            auto& s = words[w].symbols;
            count_pairs(w, -1);
            std::vector<uint32_t> out;
            out.reserve(s.size());
            for (size_t i = 0; i < s.size(); ++i) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    out.push_back(merged);
                    ++i;
                } else {
                    out.push_back(s[i]);
                }
            }
            s = std::move(out);
            count_pairs(w, +1);
        }
        for (auto it = pair_count.begin(); it != pair_count.end();) it = it->second == 0 ? pair_count.erase(it) : std::next(it);
    }
    for (const std::string& special : options.special_tokens) {
        const uint32_t id = uint32_t(token_of.size());
        token_of.push_back(special);
        spec.added.push_back({id, special, true, false});
        spec.vocab.emplace(special, id);
    }
    return spec;
}

}  // namespace shrink::text
