// Text for language models: a user's text or JSON-lines file, refused with the place
// named; windows and the held-out split.
#include "data/text_file.hpp"
#include "support.hpp"
#include "text/windows.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace shrink;

TEST_CASE("a text file is read as it is; a .jsonl file by its \"text\" strings", "[text][data]") {
    test::temp_dir dir;
    test::write_text(dir / "book.txt", "Line one.\nLine two, é.\n");
    CHECK(read_text_file(dir / "book.txt") == "Line one.\nLine two, é.\n");
    test::write_text(dir / "rows.jsonl", "{\"text\": \"first\", \"id\": 1}\n\n{\"text\": \"second\\nrow\"}\n");
    CHECK(read_text_file(dir / "rows.jsonl") == "first\nsecond\nrow");
}

TEST_CASE("a text file is refused with the place named", "[text][data]") {
    test::temp_dir dir;
    auto refused = [&](const std::string& name, const std::string& bytes, const std::string& what) {
        test::write_text(dir / name, bytes);
        try {
            read_text_file(dir / name);
            FAIL("accepted; expected: " << what);
        } catch (const input_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find((dir / name).string() + what) != std::string::npos);
        }
    };
    refused("latin1.txt", "ok\nnaïve but caf\xE9\n", ":2:15: error: the text is not valid UTF-8 here");
    refused("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": 3}\n", ":2: error: no \"text\" string in this object");
    refused("list.jsonl", "[1, 2]\n", ":1: error: each line must be a JSON object");
    refused("broken.jsonl", "{\"text\": \"a\"}\n{\"text\": \n", ":2: error: not valid JSON");
    refused("blank.txt", " \n\t\n", ": holds no text");
    CHECK_THROWS_AS(read_text_file(dir / "missing.txt"), input_error);
}

TEST_CASE("windows: every tenth is held out, calibration samples by seed", "[text][data]") {
    CHECK(text::window_count(1000, 128) == 7);
    CHECK(text::window_count(100, 128) == 0);
    const text::window_split s = text::split_windows(35);
    CHECK(s.evaluation == std::vector<int64_t>{9, 19, 29});
    CHECK(s.fitting.size() == 32);
    std::set<int64_t> all(s.fitting.begin(), s.fitting.end());
    for (int64_t e : s.evaluation) CHECK_FALSE(all.count(e));
    const auto a = text::sample_windows(s.fitting, 8, 42), b = text::sample_windows(s.fitting, 8, 42), c = text::sample_windows(s.fitting, 8, 43);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.size() == 8);
    CHECK(std::is_sorted(a.begin(), a.end()));
    CHECK(text::sample_windows(s.fitting, 100, 1) == s.fitting);
}
