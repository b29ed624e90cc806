// Generation: the KV cache gives the logits a whole window gives, a failed step leaves it
// as it was, sampling is argmax at temperature 0 and seeded above it, and `shrink
// generate` continues a prompt as recomputing every window from scratch would.
#include "cpu/engine.hpp"
#include "hf/config.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"
#include "text/bpe_trainer.hpp"
#include "text/sampling.hpp"
#include "text/tokenizer.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;

namespace {

std::vector<float> tokens_of(const std::vector<int>& ids, int64_t first_position) {
    std::vector<float> t;
    for (size_t i = 0; i < ids.size(); ++i) t.insert(t.end(), {float(ids[i]), float(first_position + int64_t(i))});
    return t;
}

}  // namespace

TEST_CASE("the KV cache gives the logits of the whole window", "[decoder][generate]") {
    const decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 21);
    const std::vector<int> ids{3, 1, 4, 1, 5, 9, 2, 6, 5};
    const std::vector<float> whole = test::decoder_logits(m, {ids});
    const engine e(m);
    cpu::kv_cache cache;
    std::vector<float> pieces;
    const std::vector<float> prefill = tokens_of({ids.begin(), ids.begin() + 5}, 0);
    for (float v : e.run_cached(prefill.data(), 5, cache)) pieces.push_back(v);
    for (size_t t = 5; t < ids.size(); ++t) {
        // A step at the wrong position fails and leaves the cache as it was.
        const std::vector<float> wrong = tokens_of({ids[t]}, int64_t(t) + 1);
        CHECK_THROWS_WITH(e.run_cached(wrong.data(), 1, cache), Catch::Contains("must have position " + std::to_string(t)));
        CHECK(cache.positions == int64_t(t));
        const std::vector<float> one = tokens_of({ids[t]}, int64_t(t));
        for (float v : e.run_cached(one.data(), 1, cache)) pieces.push_back(v);
    }
    REQUIRE(pieces.size() == whole.size());
    double worst = 0;
    for (size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, double(std::abs(pieces[i] - whole[i])) / (1 + std::abs(whole[i])));
    CHECK(worst < 1e-5);
    CHECK(cache.layers.size() == size_t(s.layers));
    CHECK(cache.layers[0].keys.size() == ids.size() * size_t(s.kv_heads * s.head_dim));
}

TEST_CASE("sampling: argmax at temperature 0, seeded draws from the softmax above it", "[generate]") {
    const std::vector<float> logits{0.0f, float(std::log(3.0)), -1e9f, float(std::log(3.0))};
    rng g(1);
    CHECK(text::sample_token(logits.data(), 4, 0.0, g) == 1);  // the lowest id of the two most likely
    int ones = 0, threes = 0;
    for (int i = 0; i < 20000; ++i) {
        const uint32_t t = text::sample_token(logits.data(), 4, 1.0, g);
        ones += t == 1, threes += t == 3;
        REQUIRE(t != 2);
    }
    CHECK(std::abs(ones / 20000.0 - 3.0 / 7) < 0.015);
    CHECK(std::abs(threes / 20000.0 - 3.0 / 7) < 0.015);
    rng a(9), b(9);
    for (int i = 0; i < 50; ++i) CHECK(text::sample_token(logits.data(), 4, 0.7, a) == text::sample_token(logits.data(), 4, 0.7, b));
}

TEST_CASE("shrink generate continues a prompt as recomputing every window would", "[generate][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_decoder(dir.path(), "In the beginning God created the heaven and the earth. And the earth was without form, and void.\n", 22);
    const model& m = d.m;
    const text::tokenizer_spec spec = text::parse_tokenizer_json(d.tokenizer_json, "tokenizer.json");

    const std::string prompt = "In the beginning";
    const auto r = test::shrink_cli("generate " + (dir / "lm.safetensors").string() + " --tokenizer " + dir.path().string() +
                                    " --prompt '" + prompt + "' --max-tokens 8");
    INFO(r.output);
    REQUIRE(r.code == 0);
    // The same greedy continuation, each step from the whole window again (no cache).
    const text::tokenizer tok(spec);
    std::vector<int> ids;
    for (uint32_t id : tok.encode(prompt)) ids.push_back(int(id));
    std::vector<uint32_t> generated;
    rng unused(0);
    for (int step = 0; step < 8; ++step) {
        const std::vector<float> logits = test::decoder_logits(m, {ids});
        const uint32_t next = text::sample_token(logits.data() + (ids.size() - 1) * 300, 300, 0.0, unused);
        if (next == spec.added[0].id) break;  // <|endoftext|>, the special token generation stops at
        generated.push_back(next);
        ids.push_back(int(next));
    }
    CHECK(r.output.find(prompt + tok.decode(generated) + "\n") != std::string::npos);
    CHECK(r.output.find("prompt tokens in") != std::string::npos);

    const auto empty = test::shrink_cli("generate " + (dir / "lm.safetensors").string() + " --tokenizer " + dir.path().string() + " --prompt ''");
    CHECK(empty.code == 1);
    CHECK(empty.output.find("the prompt tokenizes to nothing") != std::string::npos);
}
