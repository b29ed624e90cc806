#include "text/tokenizer.hpp"
#include "text/byte_level.hpp"
#include "text/utf8.hpp"
#include "util/errors.hpp"

#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <functional>
#include <queue>
#include <unordered_map>

namespace shrink::text {

namespace {

/// tokenizer.json patterns are Oniguruma's (the library's regex engine). ICU reads the
/// same syntax for everything these patterns use except \s and \S: Oniguruma's \s is the
/// Unicode White_Space property (which holds U+000B and U+0085), ICU's is [\t\n\f\r\p{Z}].
std::string to_icu_syntax(const std::string& pattern) {
    std::string out;
    out.reserve(pattern.size() + 32);
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '\\' && i + 1 < pattern.size()) {
            const char next = pattern[++i];
            if (next == 's') out += "\\p{White_Space}";
            else if (next == 'S') out += "\\P{White_Space}";
            else {
                out += '\\';
                out += next;
            }
        } else {
            out += pattern[i];
        }
    }
    return out;
}

struct compiled_split {
    std::unique_ptr<icu::RegexPattern> pattern;
    bool remove_matches = false;
};

std::unique_ptr<icu::RegexPattern> compile(const std::string& pattern, bool literal, const std::string& where) {
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse{};
    std::unique_ptr<icu::RegexPattern> p(icu::RegexPattern::compile(
        icu::UnicodeString::fromUTF8(literal ? pattern : to_icu_syntax(pattern)), literal ? UREGEX_LITERAL : 0, parse, status));
    if (U_FAILURE(status) || !p)
        throw input_error(where + ": pattern does not compile (" + u_errorName(status) + " at offset " + std::to_string(parse.offset) + ")");
    return p;
}

/// Hands `out` the pieces of `piece` that `split` makes as it finds them: the matches and
/// the stretches between them, in order (the matches left out when they are removed),
/// empty ones dropped.
void split_piece(const std::string& piece, const compiled_split& split, const std::function<void(std::string&&)>& out) {
    const icu::UnicodeString u = icu::UnicodeString::fromUTF8(piece);
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> m(split.pattern->matcher(u, status));
    if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU regex: ") + u_errorName(status));
    auto emit = [&](int32_t from, int32_t to) {
        if (to <= from) return;
        std::string s;
        u.tempSubStringBetween(from, to).toUTF8String(s);
        out(std::move(s));
    };
    int32_t last = 0;
    while (m->find(status) && U_SUCCESS(status)) {
        const int32_t start = m->start(status), end = m->end(status);
        emit(last, start);
        if (!split.remove_matches) emit(start, end);
        last = end;
    }
    if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU regex: ") + u_errorName(status));
    emit(last, u.length());
}

/// A stretch of the text: an added token's id, or text still to tokenize.
struct segment {
    std::string text;
    std::optional<uint32_t> added;
};

/// Added tokens found leftmost-longest, indexed by their first byte.
class added_matcher {
  public:
    void add(const std::string& content, uint32_t id) { by_first_[static_cast<unsigned char>(content[0])].push_back({content, id}); }
    void finish() {
        for (auto& list : by_first_)
            std::stable_sort(list.begin(), list.end(), [](const entry& a, const entry& b) { return a.content.size() > b.content.size(); });
    }
    bool empty() const {
        return std::all_of(by_first_.begin(), by_first_.end(), [](const auto& l) { return l.empty(); });
    }
    /// Splits each text segment of `in` around the tokens found in it.
    std::vector<segment> split(std::vector<segment> in) const {
        if (empty()) return in;
        std::vector<segment> out;
        for (segment& s : in) {
            if (s.added) {
                out.push_back(std::move(s));
                continue;
            }
            size_t from = 0;
            for (size_t i = 0; i < s.text.size(); ++i) {
                const auto& candidates = by_first_[static_cast<unsigned char>(s.text[i])];
                for (const entry& e : candidates) {
                    if (s.text.compare(i, e.content.size(), e.content) != 0) continue;
                    if (i > from) out.push_back({s.text.substr(from, i - from), std::nullopt});
                    out.push_back({e.content, e.id});
                    from = i + e.content.size();
                    i = from - 1;
                    break;
                }
            }
            if (from < s.text.size()) out.push_back({s.text.substr(from), std::nullopt});
        }
        return out;
    }

  private:
    struct entry {
        std::string content;
        uint32_t id;
    };
    std::array<std::vector<entry>, 256> by_first_;
};

struct merge_entry {
    uint32_t rank;
    uint32_t id;
};

uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }

}  // namespace

struct tokenizer::impl {
    tokenizer_spec spec;
    std::vector<std::string> token_of;
    std::vector<bool> known, special;
    std::array<int64_t, 256> byte_id{};
    std::optional<uint32_t> unk;
    std::unordered_map<uint64_t, merge_entry> merges;
    std::vector<compiled_split> splits;
    std::optional<compiled_split> byte_level_split;
    added_matcher raw_added, normalized_added;
    const icu::Normalizer2* nfc = nullptr;

    std::string normalize(const std::string& utf8) const {
        if (!nfc) return utf8;
        UErrorCode status = U_ZERO_ERROR;
        const icu::UnicodeString n = nfc->normalize(icu::UnicodeString::fromUTF8(utf8), status);
        if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU NFC: ") + u_errorName(status));
        std::string out;
        n.toUTF8String(out);
        return out;
    }
    void bpe(const std::string& bytes, std::vector<uint32_t>& out, std::unordered_map<std::string, std::vector<uint32_t>>& cache) const;
    /// Runs the pipeline up to BPE: each added token and each piece, in order.
    void walk(std::string_view utf8, const std::function<void(uint32_t)>& on_added,
              const std::function<void(const std::string&)>& on_piece) const;
};

namespace {

/// One symbol of a word during BPE: a token id over a run of bytes, linked to its
/// neighbours; merged-away symbols are marked dead.
struct symbol {
    uint32_t id;
    int64_t prev, next;
    bool dead = false;
};

struct candidate {
    uint32_t rank;
    int64_t pos;
    uint32_t id;
    // std::priority_queue is a max-heap: the lowest rank, then the leftmost, comes first.
    bool operator<(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void tokenizer::impl::bpe(const std::string& bytes, std::vector<uint32_t>& out,
                          std::unordered_map<std::string, std::vector<uint32_t>>& cache) const {
    if (auto it = cache.find(bytes); it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
    }
    std::vector<uint32_t> ids;
    if (spec.ignore_merges) {
        if (auto it = spec.vocab.find(bytes_to_alphabet(bytes)); it != spec.vocab.end()) ids.push_back(it->second);
    }
    if (ids.empty()) {
        std::vector<symbol> word;
        word.reserve(bytes.size());
        bool last_unk = false;
        for (unsigned char b : bytes) {
            if (byte_id[b] >= 0) {
                word.push_back({uint32_t(byte_id[b]), 0, 0});
                last_unk = false;
            } else if (unk) {
                // As the library: a byte without a token becomes the unknown token (one for
                // a run of them with fuse_unk), or is dropped when there is none.
                if (!(spec.fuse_unk && last_unk)) word.push_back({*unk, 0, 0});
                last_unk = true;
            }
        }
        for (size_t i = 0; i < word.size(); ++i) {
            word[i].prev = int64_t(i) - 1;
            word[i].next = i + 1 < word.size() ? int64_t(i + 1) : -1;
        }
        std::priority_queue<candidate> queue;
        auto consider = [&](int64_t pos) {
            const int64_t next = word[size_t(pos)].next;
            if (next < 0) return;
            if (auto it = merges.find(pair_key(word[size_t(pos)].id, word[size_t(next)].id)); it != merges.end())
                queue.push({it->second.rank, pos, it->second.id});
        };
        for (size_t i = 0; i + 1 < word.size(); ++i) consider(int64_t(i));
        while (!queue.empty()) {
            const candidate top = queue.top();
            queue.pop();
            symbol& left = word[size_t(top.pos)];
            if (left.dead || left.next < 0) continue;
            symbol& right = word[size_t(left.next)];
            // An entry made stale by an earlier merge on either side no longer names this pair.
            auto it = merges.find(pair_key(left.id, right.id));
            if (it == merges.end() || it->second.id != top.id) continue;
            left.id = top.id;
            right.dead = true;
            left.next = right.next;
            if (right.next >= 0) word[size_t(right.next)].prev = top.pos;
            if (left.prev >= 0) consider(left.prev);
            consider(top.pos);
        }
        for (const symbol& s : word)
            if (!s.dead) ids.push_back(s.id);
    }
    out.insert(out.end(), ids.begin(), ids.end());
    if (cache.size() < 100000) cache.emplace(bytes, std::move(ids));
}

tokenizer::tokenizer(tokenizer_spec spec) : impl_(std::make_unique<impl>()) {
    impl& t = *impl_;
    t.spec = std::move(spec);
    const std::string file = t.spec.file.string();
    uint32_t size = 0;
    for (const auto& [token, id] : t.spec.vocab) size = std::max(size, id + 1);
    for (const auto& a : t.spec.added) size = std::max(size, a.id + 1);
    if (t.spec.nfc) {
        UErrorCode status = U_ZERO_ERROR;
        t.nfc = icu::Normalizer2::getNFCInstance(status);
        if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU NFC normalizer: ") + u_errorName(status));
    }
    t.token_of.assign(size, {});
    t.known.assign(size, false);
    t.special.assign(size, false);
    for (const auto& [token, id] : t.spec.vocab) {
        t.token_of[id] = token;
        t.known[id] = true;
    }
    for (const auto& a : t.spec.added) {
        t.token_of[a.id] = a.content;
        t.known[a.id] = true;
        t.special[a.id] = a.special;
        // A normalized token is matched in normalized text, so in its normalized form.
        if (a.normalized) t.normalized_added.add(t.normalize(a.content), a.id);
        else t.raw_added.add(a.content, a.id);
    }
    t.raw_added.finish();
    t.normalized_added.finish();
    for (unsigned b = 0; b < 256; ++b) {
        std::string c;
        append_utf8(c, byte_to_char(static_cast<unsigned char>(b)));
        auto it = t.spec.vocab.find(c);
        t.byte_id[b] = it == t.spec.vocab.end() ? -1 : int64_t(it->second);
    }
    if (t.spec.unk_token) t.unk = t.spec.vocab.at(*t.spec.unk_token);
    t.merges.reserve(t.spec.merges.size());
    for (size_t rank = 0; rank < t.spec.merges.size(); ++rank) {
        const auto& [a, b] = t.spec.merges[rank];
        // The first of duplicate merges keeps its rank, as in the library's map.
        t.merges.emplace(pair_key(t.spec.vocab.at(a), t.spec.vocab.at(b)), merge_entry{uint32_t(rank), t.spec.vocab.at(a + b)});
    }
    for (size_t i = 0; i < t.spec.splits.size(); ++i) {
        const split_rule& s = t.spec.splits[i];
        t.splits.push_back({compile(s.pattern, s.literal, file + ": pre_tokenizer Split step " + std::to_string(i + 1)), s.remove_matches});
    }
    if (t.spec.byte_level_regex) t.byte_level_split = compiled_split{compile(gpt2_split_pattern, false, file + ": ByteLevel"), false};
}

tokenizer::~tokenizer() = default;
tokenizer::tokenizer(tokenizer&&) noexcept = default;
tokenizer& tokenizer::operator=(tokenizer&&) noexcept = default;

tokenizer tokenizer::from_file(const std::filesystem::path& path) {
    std::error_code ec;
    return tokenizer(read_tokenizer_json(std::filesystem::is_directory(path, ec) ? path / "tokenizer.json" : path));
}

void tokenizer::impl::walk(std::string_view utf8, const std::function<void(uint32_t)>& on_added,
                           const std::function<void(const std::string&)>& on_piece) const {
    if (auto bad = first_invalid_utf8(utf8)) throw input_error("text is not valid UTF-8 at byte " + std::to_string(*bad));
    std::vector<segment> segments = raw_added.split({{std::string(utf8), std::nullopt}});
    if (nfc)  // without a normalizer the text stays as it is (not copied)
        for (segment& s : segments)
            if (!s.added) s.text = normalize(s.text);
    segments = normalized_added.split(std::move(segments));

    // Each split's parts go through the next split one at a time, depth first: the same
    // order as splitting the whole text at each level in turn, without holding every
    // piece of a large text at once (the KJV text's million pre-tokens took 20 MB that way).
    std::function<void(size_t, std::string&&)> pass = [&](size_t level, std::string&& piece) {
        if (level < splits.size()) {
            split_piece(piece, splits[level], [&](std::string&& part) { pass(level + 1, std::move(part)); });
            return;
        }
        if (spec.add_prefix_space && piece[0] != ' ') piece.insert(piece.begin(), ' ');
        if (byte_level_split)
            split_piece(piece, *byte_level_split, [&](std::string&& part) { on_piece(part); });
        else
            on_piece(piece);
    };
    for (segment& s : segments) {
        if (s.added)
            on_added(*s.added);
        else if (!s.text.empty())
            pass(0, std::move(s.text));
    }
}

std::vector<uint32_t> tokenizer::encode(std::string_view utf8) const {
    std::vector<uint32_t> ids;
    std::unordered_map<std::string, std::vector<uint32_t>> cache;
    impl_->walk(
        utf8, [&](uint32_t id) { ids.push_back(id); }, [&](const std::string& piece) { impl_->bpe(piece, ids, cache); });
    return ids;
}

std::vector<std::string> tokenizer::pre_tokenize(std::string_view utf8) const {
    std::vector<std::string> pieces;
    impl_->walk(
        utf8, [](uint32_t) {}, [&](const std::string& piece) { pieces.push_back(piece); });
    return pieces;
}

std::string tokenizer::token_bytes(uint32_t id) const {
    // ByteLevel decoding: a token whose characters all stand for bytes gives those bytes;
    // any other (an added token such as "<|endoftext|>" with a character outside the
    // alphabet) gives its own UTF-8.
    const std::string& token = this->token(id);
    std::string mapped;
    for (size_t i = 0; i < token.size();) {
        auto b = char_to_byte(next_code_point(token, i));
        if (!b) return token;
        mapped += char(*b);
    }
    return mapped;
}

std::string tokenizer::decode(const std::vector<uint32_t>& ids, bool skip_special) const {
    const impl& t = *impl_;
    std::string bytes;
    for (size_t k = 0; k < ids.size(); ++k) {
        const uint32_t id = ids[k];
        if (id >= t.known.size() || !t.known[id])
            throw input_error("token id " + std::to_string(id) + " (position " + std::to_string(k) + ") is not in the tokenizer's vocabulary of " +
                              std::to_string(t.token_of.size()));
        if (skip_special && t.special[id]) continue;
        bytes += token_bytes(id);
    }
    return utf8_lossy(bytes);
}

uint32_t tokenizer::vocab_size() const { return uint32_t(impl_->token_of.size()); }

const std::string& tokenizer::token(uint32_t id) const {
    if (id >= impl_->token_of.size() || !impl_->known[id]) throw std::out_of_range("token id " + std::to_string(id));
    return impl_->token_of[id];
}

std::optional<uint32_t> tokenizer::id_of(std::string_view token) const {
    const impl& t = *impl_;
    for (const auto& a : t.spec.added)
        if (a.content == token) return a.id;
    if (auto it = t.spec.vocab.find(std::string(token)); it != t.spec.vocab.end()) return it->second;
    return std::nullopt;
}

const tokenizer_spec& tokenizer::spec() const { return impl_->spec; }

}  // namespace shrink::text
