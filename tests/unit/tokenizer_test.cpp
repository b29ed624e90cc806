// Byte-level BPE tokenizers (text/): UTF-8 handling, the byte alphabet, reading
// tokenizer.json strictly, BPE's merge order, training, and the KJV text. Token-id parity
// with Hugging Face's library over the whole KJV text is tests/interop/tokenizer_parity.
#include "data/kjv.hpp"
#include "support.hpp"
#include "text/bpe_trainer.hpp"
#include "text/byte_level.hpp"
#include "text/tokenizer.hpp"
#include "text/utf8.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <set>

using namespace shrink;
using namespace shrink::text;
using json = nlohmann::json;

namespace {

/// A tokenizer.json over the 256 byte tokens plus `merges` (each adds the merged token).
json small_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges) {
    json vocab = json::object();
    for (unsigned b = 0; b < 256; ++b) vocab[bytes_to_alphabet(std::string(1, char(b)))] = b;
    json m = json::array();
    uint32_t next = 256;
    for (const auto& [a, b] : merges) {
        if (!vocab.contains(a + b)) vocab[a + b] = next++;
        m.push_back(a + " " + b);
    }
    return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"added_tokens", json::array()}};
}

tokenizer make(const json& j) { return tokenizer(parse_tokenizer_json(j.dump(), "tok.json")); }

std::vector<std::string> tokens_of(const tokenizer& t, const std::string& text) {
    std::vector<std::string> out;
    for (uint32_t id : t.encode(text)) out.push_back(t.token(id));
    return out;
}

/// parse_tokenizer_json must refuse `j` with a message holding `what`.
void refused(const json& j, const std::string& what) {
    try {
        make(j);
        FAIL("accepted; expected: " << what);
    } catch (const input_error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find("tok.json: ") == 0);
        CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("UTF-8: validity, and lossy decoding as Rust's from_utf8_lossy", "[text]") {
    CHECK_FALSE(first_invalid_utf8("plain, é, 日本, 😀"));
    CHECK(first_invalid_utf8("ab\xC0\xAF") == 2u);          // overlong '/'
    CHECK(first_invalid_utf8("a\xED\xA0\x80") == 1u);       // a surrogate
    CHECK(first_invalid_utf8("\xF4\x90\x80\x80") == 0u);    // past U+10FFFF
    CHECK(first_invalid_utf8("ok\xE6\x97") == 2u);          // cut short
    // One U+FFFD per maximal invalid subpart.
    CHECK(utf8_lossy("Hello \xF0\x90\x80World") == "Hello \xEF\xBF\xBDWorld");
    CHECK(utf8_lossy("\xF0\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(utf8_lossy("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
    CHECK(utf8_lossy("日本") == "日本");
}

TEST_CASE("the byte-level alphabet: 256 distinct printable characters, reversible", "[text]") {
    std::set<char32_t> seen;
    for (unsigned b = 0; b < 256; ++b) {
        const char32_t c = byte_to_char(static_cast<unsigned char>(b));
        seen.insert(c);
        REQUIRE(char_to_byte(c) == static_cast<unsigned char>(b));
    }
    CHECK(seen.size() == 256);
    CHECK(bytes_to_alphabet(" a\n") == "\xC4\xA0" "a\xC4\x8A");  // "Ġ" "a" "Ċ"
    CHECK_FALSE(char_to_byte(U'日'));
}

TEST_CASE("BPE merges the lowest-ranked pair first, the leftmost of equals", "[text]") {
    // "ab" outranks "bc", so "abc" is ab|c although "bc" is also a merge.
    tokenizer t = make(small_tokenizer({{"a", "b"}, {"b", "c"}, {"ab", "c"}}));
    CHECK(tokens_of(t, "abc") == std::vector<std::string>{"abc"});
    CHECK(tokens_of(t, "bcab") == std::vector<std::string>{"bc", "ab"});
    // With only "a a": "aaa" merges the leftmost pair.
    tokenizer aa = make(small_tokenizer({{"a", "a"}}));
    CHECK(tokens_of(aa, "aaa") == std::vector<std::string>{"aa", "a"});
    CHECK(tokens_of(aa, "aaaa") == std::vector<std::string>{"aa", "aa"});
    // The pre-tokenizer splits first: " a" and " b" are separate words with their space.
    tokenizer sp = make(small_tokenizer({{"\xC4\xA0", "a"}}));
    CHECK(tokens_of(sp, "a a") == std::vector<std::string>{"a", "\xC4\xA0" "a"});
    CHECK(sp.decode(sp.encode("a a")) == "a a");
}

TEST_CASE("ignore_merges takes a whole word from the vocabulary", "[text]") {
    json j = small_tokenizer({{"a", "b"}, {"ab", "c"}});
    j["model"]["vocab"]["bc"] = 300;  // in the vocabulary, but no merge makes it
    j["model"]["vocab"]["abcbc"] = 301;
    tokenizer plain = make(j);
    CHECK(tokens_of(plain, "abcbc") == std::vector<std::string>{"abc", "b", "c"});
    j["model"]["ignore_merges"] = true;
    tokenizer whole = make(j);
    CHECK(tokens_of(whole, "abcbc") == std::vector<std::string>{"abcbc"});
}

TEST_CASE("added tokens split the text first; special ones can be skipped when decoding", "[text]") {
    json j = small_tokenizer({});
    j["added_tokens"] = json::array({{{"id", 256}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}},
                                     {{"id", 257}, {"content", "<|end|>x"}, {"special", false}, {"normalized", false}}});
    tokenizer t = make(j);
    const auto ids = t.encode("a<|end|>b<|end|>x");
    CHECK(ids == std::vector<uint32_t>{uint32_t('a'), 256, uint32_t('b'), 257});  // the longest at the leftmost place
    CHECK(t.decode(ids) == "a<|end|>b<|end|>x");
    CHECK(t.decode(ids, true) == "ab<|end|>x");
    CHECK(t.vocab_size() == 258);
}

TEST_CASE("tokenizer.json is read strictly, naming the key", "[text]") {
    const json ok = small_tokenizer({{"a", "b"}});
    SECTION("other models") {
        json j = ok;
        j["model"]["type"] = "Unigram";
        refused(j, "model.type: 'Unigram' is not supported");
        j = ok;
        j["model"]["byte_fallback"] = true;
        refused(j, "model.byte_fallback: true is SentencePiece-style BPE");
        j = ok;
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}};
        refused(j, "pre_tokenizer.type: pre-tokenizer 'Metaspace' is not supported");
        j = ok;
        j["normalizer"] = {{"type", "Lowercase"}};
        refused(j, "normalizer.type: normalizer 'Lowercase' is not supported");
        j = ok;
        j["decoder"] = {{"type", "WordPiece"}};
        refused(j, "decoder.type: decoder 'WordPiece' is not supported");
    }
    SECTION("merges and ids") {
        json j = ok;
        j["model"]["merges"] = json::array({"a x y"});
        refused(j, "model.merges[0]: 'a x y' is not two tokens separated by one space");
        j = ok;
        j["model"]["merges"] = json::array({json::array({"a", "zz"})});
        refused(j, "model.merges[0]: 'zz' is not in the vocabulary");
        j = ok;
        j["model"]["vocab"]["again"] = 97;
        refused(j, "id 97 is given to two tokens");
        j = ok;
        j["model"]["vocab"]["huge"] = 4000000000u;
        refused(j, "model.vocab[\"huge\"]: 4000000000 is outside 0..16777215");
        j = ok;
        j["added_tokens"] = json::array({{{"id", 97}, {"content", "<s>"}, {"special", true}}});
        refused(j, "added_tokens[0].id: 97 is already the id of 'a'");
        j = ok;
        j["added_tokens"] = json::array({{{"id", 300}, {"content", "<s>"}, {"lstrip", true}}});
        refused(j, "added_tokens[0].lstrip: true is not supported yet");
    }
    SECTION("pre-tokenizer steps") {
        json j = ok;
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers", json::array({{{"type", "ByteLevel"}, {"use_regex", false}},
                                                             {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Isolated"}}})}};
        refused(j, "pre_tokenizer.pretokenizers[1]: a 'Split' step after ByteLevel is not supported");
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
                                                             {{"type", "ByteLevel"}, {"use_regex", false}}})}};
        refused(j, "pre_tokenizer Split step 1: pattern does not compile");
        j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Isolated"}};
        refused(j, "pre_tokenizer: has no ByteLevel step");
    }
    SECTION("not JSON") {
        try {
            parse_tokenizer_json("{\"model\": ", "tok.json");
            FAIL("accepted");
        } catch (const input_error& e) {
            CHECK(std::string(e.what()).find("tok.json: not valid JSON") == 0);
        }
    }
}

TEST_CASE("encoding refuses text that is not UTF-8, naming the byte", "[text]") {
    tokenizer t = make(small_tokenizer({}));
    CHECK_THROWS_WITH(t.encode("ok\xFFno"), Catch::Contains("not valid UTF-8 at byte 2"));
    CHECK_THROWS_WITH(t.decode({9999}), Catch::Contains("token id 9999 (position 0) is not in the tokenizer's vocabulary"));
}

TEST_CASE("a trained vocabulary is deterministic, reads back, and round-trips text", "[text]") {
    const std::string corpus =
        "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n"
        "And God said, Let there be light: and there was light.\nAnd God saw the light, that it was good.\n";
    bpe_training options;
    options.vocab_size = 300;
    const tokenizer_spec a = train_bpe(corpus, options), b = train_bpe(corpus, options);
    CHECK(write_tokenizer_json(a) == write_tokenizer_json(b));
    CHECK(a.vocab.size() <= 300);
    CHECK(a.added.size() == 1);
    CHECK(a.added[0].content == "<|endoftext|>");
    tokenizer t(parse_tokenizer_json(write_tokenizer_json(a), "tok.json"));
    CHECK(t.decode(t.encode(corpus)) == corpus);
    CHECK(t.encode(corpus).size() < corpus.size() / 2);  // the merges compress
    CHECK(tokens_of(t, " God") == std::vector<std::string>{"\xC4\xA0" "God"});  // frequent enough to be one token
    CHECK(t.encode("a<|endoftext|>b").size() == 3);
}

TEST_CASE("the KJV text: every verse, one a line, without references", "[text][data]") {
    const std::string kjv = kjv_text();
    CHECK(std::count(kjv.begin(), kjv.end(), '\n') == 31102);
    CHECK(kjv.rfind("In the beginning God created the heaven and the earth.\n", 0) == 0);
    CHECK(kjv.size() > 4'000'000);
    CHECK(kjv.find("Amen.\n", kjv.size() - 7) != std::string::npos);
    CHECK_FALSE(first_invalid_utf8(kjv));
}

TEST_CASE("shrink tokenize refuses an unsupported tokenizer, naming file and key", "[text][cli]") {
    test::temp_dir dir;
    json j = small_tokenizer({});
    j["model"]["type"] = "WordPiece";
    test::write_text(dir / "tokenizer.json", j.dump());
    const auto r = test::shrink_cli("tokenize " + dir.path().string() + " --text hello");
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find((dir / "tokenizer.json").string() + ": model.type: 'WordPiece' is not supported") != std::string::npos);
    const auto ok = test::shrink_cli("train-tokenizer --text 'abab abab' --vocab-size 260 --out " + (dir / "t.json").string());
    INFO(ok.output);
    CHECK(ok.code == 0);
    const auto ids = test::shrink_cli("tokenize " + (dir / "t.json").string() + " --text abab");
    CHECK(ids.code == 0);
    const auto back = test::shrink_cli("tokenize " + (dir / "t.json").string() + " --decode --text '" + ids.output + "'");
    CHECK(back.output == "abab");
}
