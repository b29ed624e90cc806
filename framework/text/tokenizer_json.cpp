// tokenizer.json in and out. What is refused is refused by key, so that a user knows which
// part of their tokenizer shrink does not implement (rather than getting ids that differ
// from the reference library's).
#include "text/tokenizer_spec.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/json_fields.hpp"

#include <nlohmann/json.hpp>

#include <unordered_set>

namespace shrink::text {

const char* const gpt2_split_pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

using json = nlohmann::json;

constexpr uint64_t max_tokenizer_bytes = uint64_t(1) << 30;

/// A token in a message: quoted, cut at 60 bytes.
std::string quoted(const std::string& token) { return "'" + token.substr(0, 60) + "'"; }

/// Reads tokenizer.json's fields, with the token-id and step-type rules on top.
class reader : public json_fields {
  public:
    using json_fields::json_fields;
    uint32_t id_of(const json& v, const std::string& key) const { return uint32_t(int_of(v, key, 0, max_token_id)); }
    /// The step's "type", checked to be a string.
    std::string type_of(const json& step, const std::string& path) const {
        if (!step.is_object()) fail(path, "must be an object, got " + std::string(step.type_name()));
        return string_of(field(step, "type", path), path + ".type");
    }
};

void read_normalizer(const reader& r, const json& n, const std::string& path, tokenizer_spec& spec) {
    if (n.is_null()) return;
    const std::string type = r.type_of(n, path);
    if (type == "NFC") {
        spec.nfc = true;
    } else if (type == "Sequence") {
        const json& steps = r.field(n, "normalizers", path);
        if (!steps.is_array()) r.fail(path + ".normalizers", "must be a list");
        for (size_t i = 0; i < steps.size(); ++i) read_normalizer(r, steps[i], path + ".normalizers[" + std::to_string(i) + "]", spec);
    } else {
        r.fail(path + ".type", "normalizer '" + type + "' is not supported (shrink implements NFC, as Qwen 2 uses, or none)");
    }
}

/// Reads the pre-tokenizer steps; returns whether a ByteLevel step was seen (it must come last).
void read_pre_tokenizer(const reader& r, const json& p, const std::string& path, tokenizer_spec& spec, bool& byte_level) {
    const std::string type = r.type_of(p, path);
    if (byte_level) r.fail(path, "a '" + type + "' step after ByteLevel is not supported (ByteLevel must come last)");
    if (type == "Sequence") {
        const json& steps = r.field(p, "pretokenizers", path);
        if (!steps.is_array()) r.fail(path + ".pretokenizers", "must be a list");
        for (size_t i = 0; i < steps.size(); ++i)
            read_pre_tokenizer(r, steps[i], path + ".pretokenizers[" + std::to_string(i) + "]", spec, byte_level);
    } else if (type == "Split") {
        split_rule rule;
        const json& pattern = r.field(p, "pattern", path);
        if (pattern.is_object() && pattern.contains("Regex")) {
            rule.pattern = r.string_of(pattern["Regex"], path + ".pattern.Regex");
        } else if (pattern.is_object() && pattern.contains("String")) {
            rule.pattern = r.string_of(pattern["String"], path + ".pattern.String");
            rule.literal = true;
        } else {
            r.fail(path + ".pattern", "must be {\"Regex\": ...} or {\"String\": ...}");
        }
        if (rule.pattern.empty()) r.fail(path + ".pattern", "is empty");
        const std::string behavior = r.string_of(r.field(p, "behavior", path), path + ".behavior");
        if (behavior == "Removed") rule.remove_matches = true;
        else if (behavior != "Isolated")
            r.fail(path + ".behavior", "'" + behavior + "' is not supported (shrink implements Isolated and Removed)");
        if (r.bool_of(p, "invert", path, false)) r.fail(path + ".invert", "true is not supported");
        spec.splits.push_back(std::move(rule));
    } else if (type == "ByteLevel") {
        byte_level = true;
        spec.add_prefix_space = r.bool_of(p, "add_prefix_space", path, true);
        spec.byte_level_regex = r.bool_of(p, "use_regex", path, true);
    } else {
        r.fail(path + ".type", "pre-tokenizer '" + type +
                                   "' is not supported: shrink reads byte-level BPE tokenizers (Split and ByteLevel steps, as GPT-2, "
                                   "Llama 3 and Qwen 2 have)");
    }
}

void read_decoder(const reader& r, const json& d, const std::string& path) {
    if (d.is_null()) r.fail(path, "missing: a byte-level BPE tokenizer decodes with ByteLevel");
    const std::string type = r.type_of(d, path);
    if (type == "Sequence") {
        const json& steps = r.field(d, "decoders", path);
        if (!steps.is_array() || steps.size() != 1) r.fail(path + ".decoders", "must be one ByteLevel step");
        read_decoder(r, steps[0], path + ".decoders[0]");
    } else if (type != "ByteLevel") {
        r.fail(path + ".type", "decoder '" + type + "' is not supported (a byte-level BPE tokenizer decodes with ByteLevel)");
    }
}

void read_model(const reader& r, const json& m, tokenizer_spec& spec) {
    const std::string type = r.type_of(m, "model");
    if (type != "BPE")
        r.fail("model.type", "'" + type + "' is not supported: shrink reads byte-level BPE tokenizers (GPT-2, Llama 3, Qwen 2 style)");
    if (r.bool_of(m, "byte_fallback", "model", false))
        r.fail("model.byte_fallback", "true is SentencePiece-style BPE (Llama 2, Mistral 7B v0.1), which is not supported");
    if (auto it = m.find("dropout"); it != m.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0))
        r.fail("model.dropout", "BPE dropout makes encoding random; it is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (auto it = m.find(key); it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
            r.fail(std::string("model.") + key, "is not supported in a byte-level tokenizer");
    spec.ignore_merges = r.bool_of(m, "ignore_merges", "model", false);
    spec.fuse_unk = r.bool_of(m, "fuse_unk", "model", false);
    if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) spec.unk_token = r.string_of(*it, "model.unk_token");

    const json& vocab = r.field(m, "vocab", "model");
    if (!vocab.is_object()) r.fail("model.vocab", "must be an object of token: id");
    std::unordered_set<uint32_t> ids;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const std::string key = "model.vocab[\"" + it.key().substr(0, 40) + "\"]";
        const uint32_t id = r.id_of(it.value(), key);
        if (!ids.insert(id).second) r.fail(key, "id " + std::to_string(id) + " is given to two tokens");
        spec.vocab.emplace(it.key(), id);
    }
    if (spec.unk_token && !spec.vocab.count(*spec.unk_token)) r.fail("model.unk_token", "'" + *spec.unk_token + "' is not in the vocabulary");

    const json& merges = r.field(m, "merges", "model");
    if (!merges.is_array()) r.fail("model.merges", "must be a list");
    spec.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string key = "model.merges[" + std::to_string(i) + "]";
        const json& e = merges[i];
        std::pair<std::string, std::string> pair;
        if (e.is_string()) {
            // "a b": tokens never hold a plain space in the byte-level alphabet (it is "Ġ").
            const std::string s = r.string_of(e, key);
            const size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
                r.fail(key, "'" + s.substr(0, 60) + "' is not two tokens separated by one space");
            pair = {s.substr(0, space), s.substr(space + 1)};
        } else if (e.is_array() && e.size() == 2) {
            pair = {r.string_of(e[0], key + "[0]"), r.string_of(e[1], key + "[1]")};
        } else {
            r.fail(key, "must be \"a b\" or [\"a\", \"b\"]");
        }
        for (const std::string& token : {pair.first, pair.second, pair.first + pair.second})
            if (!spec.vocab.count(token)) r.fail(key, quoted(token) + " is not in the vocabulary");
        spec.merges.push_back(std::move(pair));
    }
}

void read_added_tokens(const reader& r, const json& list, tokenizer_spec& spec) {
    if (list.is_null()) return;
    if (!list.is_array()) r.fail("added_tokens", "must be a list");
    std::unordered_set<std::string> contents;
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string key = "added_tokens[" + std::to_string(i) + "]";
        const json& t = list[i];
        if (!t.is_object()) r.fail(key, "must be an object");
        added_token a;
        a.id = r.id_of(r.field(t, "id", key), key + ".id");
        a.content = r.string_of(r.field(t, "content", key), key + ".content");
        if (a.content.empty()) r.fail(key + ".content", "is empty");
        if (!contents.insert(a.content).second) r.fail(key + ".content", "'" + a.content + "' is added twice");
        a.special = r.bool_of(t, "special", key, false);
        a.normalized = r.bool_of(t, "normalized", key, !a.special);
        for (const char* flag : {"single_word", "lstrip", "rstrip"})
            if (r.bool_of(t, flag, key, false)) r.fail(key + "." + flag, "true is not supported yet");
        if (auto it = spec.vocab.find(a.content); it != spec.vocab.end() && it->second != a.id)
            r.fail(key + ".id", "'" + a.content + "' has id " + std::to_string(it->second) + " in the vocabulary");
        spec.added.push_back(std::move(a));
    }
    // An added token that is not in the vocabulary must not take a vocabulary token's id.
    std::unordered_map<uint32_t, const std::string*> by_id;
    for (const auto& [token, id] : spec.vocab) by_id.emplace(id, &token);
    for (size_t i = 0; i < spec.added.size(); ++i)
        if (auto it = by_id.find(spec.added[i].id); it != by_id.end() && *it->second != spec.added[i].content)
            r.fail("added_tokens[" + std::to_string(i) + "].id", std::to_string(spec.added[i].id) + " is already the id of '" +
                                                                    it->second->substr(0, 40) + "'");
}

}  // namespace

tokenizer_spec parse_tokenizer_json(const std::string& json_text, const std::filesystem::path& file) {
    const reader r(file);
    const json doc = r.parse_object(json_text);
    tokenizer_spec spec;
    spec.file = file;
    read_model(r, r.field(doc, "model", ""), spec);
    read_added_tokens(r, doc.value("added_tokens", json()), spec);
    read_normalizer(r, doc.value("normalizer", json()), "normalizer", spec);
    const json pre = doc.value("pre_tokenizer", json());
    if (pre.is_null()) r.fail("pre_tokenizer", "missing: a byte-level BPE tokenizer has a ByteLevel pre-tokenizer");
    bool byte_level = false;
    read_pre_tokenizer(r, pre, "pre_tokenizer", spec, byte_level);
    if (!byte_level)
        r.fail("pre_tokenizer", "has no ByteLevel step: not a byte-level BPE tokenizer (SentencePiece-style ones use Metaspace)");
    read_decoder(r, doc.value("decoder", json()), "decoder");
    return spec;
}

tokenizer_spec read_tokenizer_json(const std::filesystem::path& file) {
    const std::string text = read_input_file(file, max_tokenizer_bytes);
    return parse_tokenizer_json(text, file);
}

std::string write_tokenizer_json(const tokenizer_spec& spec) {
    json doc = json::object();
    doc["version"] = "1.0";
    doc["truncation"] = nullptr;
    doc["padding"] = nullptr;
    json added = json::array();
    for (const auto& a : spec.added)
        added.push_back({{"id", a.id}, {"content", a.content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", a.normalized}, {"special", a.special}});
    doc["added_tokens"] = added;
    doc["normalizer"] = spec.nfc ? json{{"type", "NFC"}} : json();
    json steps = json::array();
    for (const split_rule& s : spec.splits)
        steps.push_back({{"type", "Split"},
                         {"pattern", {{s.literal ? "String" : "Regex", s.pattern}}},
                         {"behavior", s.remove_matches ? "Removed" : "Isolated"},
                         {"invert", false}});
    json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", spec.add_prefix_space}, {"trim_offsets", true},
                       {"use_regex", spec.byte_level_regex}};
    if (steps.empty()) {
        doc["pre_tokenizer"] = byte_level;
    } else {
        steps.push_back(byte_level);
        doc["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    }
    doc["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", spec.add_prefix_space}, {"trim_offsets", false},
                             {"use_regex", spec.byte_level_regex}};
    doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    json vocab = json::object();
    for (const auto& [token, id] : spec.vocab) vocab[token] = id;
    json merges = json::array();
    for (const auto& [a, b] : spec.merges) merges.push_back(json::array({a, b}));
    doc["model"] = {{"type", "BPE"},
                    {"dropout", nullptr},
                    {"unk_token", spec.unk_token ? json(*spec.unk_token) : json()},
                    {"continuing_subword_prefix", nullptr},
                    {"end_of_word_suffix", nullptr},
                    {"fuse_unk", spec.fuse_unk},
                    {"byte_fallback", false},
                    {"ignore_merges", spec.ignore_merges},
                    {"vocab", vocab},
                    {"merges", merges}};
    return doc.dump(2, ' ', false, json::error_handler_t::strict) + "\n";
}

}  // namespace shrink::text
