// Perplexity: the arithmetic (mean NLL of every predicted token, its standard error across
// windows, bits per byte), and `shrink perplexity` over a text's windows.
#include "cpu/engine.hpp"
#include "hf/config.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"
#include "text/bpe_trainer.hpp"
#include "text/tokenizer.hpp"

#include <catch2/catch.hpp>
#include <shrink/perplexity.hpp>

#include <cmath>

using namespace shrink;

namespace {

/// A window given as its tokens (and each token's bytes): position t predicts token t + 1.
void add_window(perplexity_meter& meter, const float* logits, int64_t vocab, const std::vector<uint32_t>& ids,
                const std::vector<uint32_t>& bytes) {
    std::vector<int32_t> next;
    for (size_t t = 1; t < ids.size(); ++t) next.push_back(int32_t(ids[t]));
    meter.add_window(logits, vocab, next.data(), bytes.data() + 1, int64_t(next.size()));
}

}  // namespace

TEST_CASE("perplexity: uniform logits give the vocabulary size; errors and bits per byte", "[perplexity]") {
    const int64_t vocab = 50;
    perplexity_meter uniform;
    const std::vector<float> zeros(size_t(4 * vocab), 0.0f);
    for (int w = 0; w < 3; ++w) add_window(uniform, zeros.data(), vocab, {1, 2, 3, 4}, {1, 2, 3, 4});
    CHECK(uniform.perplexity() == Approx(50.0).epsilon(1e-12));
    CHECK(uniform.predicted_tokens() == 9);
    CHECK(uniform.standard_error() == 0.0);
    // 9 predicted tokens of 2 + 3 + 4 bytes each window: 9 x ln(50) nats over 27 bytes.
    CHECK(uniform.bits_per_byte() == Approx(9 * std::log2(50.0) / 27).epsilon(1e-12));

    // A window predicted with certainty and one uniform: NLL 0 and ln 50 per token.
    perplexity_meter mixed;
    std::vector<float> sure(size_t(3 * vocab), 0.0f);
    sure[size_t(0 * vocab + 7)] = sure[size_t(1 * vocab + 8)] = 1000.0f;
    add_window(mixed, sure.data(), vocab, {6, 7, 8}, {1, 1, 1});
    add_window(mixed, zeros.data(), vocab, {6, 7, 8}, {1, 1, 1});
    const double mean = std::log(50.0) / 2;
    CHECK(mixed.perplexity() == Approx(std::exp(mean)));
    // Per-window means 0 and ln 50: sample sd ln(50)/sqrt(2), over sqrt(2) windows.
    CHECK(mixed.standard_error() == Approx(std::exp(mean) * std::log(50.0) / 2));
    CHECK_THROWS(add_window(mixed, zeros.data(), vocab, {1}, {1}));
    CHECK_THROWS(add_window(mixed, zeros.data(), vocab, {1, 60}, {1, 1}));
}

TEST_CASE("shrink perplexity measures a decoder on a text's windows", "[perplexity][cli]") {
    test::temp_dir dir;
    const std::string corpus =
        "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon "
        "the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there "
        "was light. And God saw the light, that it was good: and God divided the light from the darkness.\n";
    const test::text_decoder d = test::save_text_decoder(dir.path(), corpus, 12);
    const model& m = d.m;
    const text::tokenizer_spec spec = text::parse_tokenizer_json(d.tokenizer_json, "tokenizer.json");
    std::string long_text;
    for (int i = 0; i < 8; ++i) long_text += corpus;
    test::write_text(dir / "text.txt", long_text);
    const std::string base = "perplexity " + (dir / "lm.safetensors").string() + " --tokenizer " + dir.path().string() + " --file " +
                             (dir / "text.txt").string();

    // Three windows of 16 tokens from the start: the same figure computed here directly.
    const auto r = test::shrink_cli(base + " --seq-len 16 --split all --windows 3");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const text::tokenizer tok(spec);
    const std::vector<uint32_t> ids = tok.encode(long_text);
    perplexity_meter want;
    for (int w = 0; w < 3; ++w) {
        std::vector<int> window(ids.begin() + w * 16, ids.begin() + (w + 1) * 16);
        const std::vector<float> logits = test::decoder_logits(m, {window});
        std::vector<uint32_t> bytes;
        for (int id : window) bytes.push_back(uint32_t(tok.token_bytes(uint32_t(id)).size()));
        add_window(want, logits.data(), 300, std::vector<uint32_t>(window.begin(), window.end()), bytes);
    }
    char expected[64];
    std::snprintf(expected, sizeof expected, "perplexity %.4f +- %.4f over 3 windows of 16 tokens", want.perplexity(), want.standard_error());
    CHECK(r.output.find(expected) != std::string::npos);
    CHECK(want.perplexity() > 100);  // a random model is close to guessing among 300

    const auto above = test::shrink_cli(base + " --seq-len 65");
    CHECK(above.code == 1);
    CHECK(above.output.find("--seq-len 65 is above the model's context of 64 tokens") != std::string::npos);
    const auto short_text = test::shrink_cli("perplexity " + (dir / "lm.safetensors").string() + " --tokenizer " + dir.path().string() +
                                             " --text 'In the beginning' --seq-len 32");
    CHECK(short_text.code == 1);
    CHECK(short_text.output.find("fewer than one window of 32") != std::string::npos);
    save_model(test::tiny_model(), dir / "mlp.safetensors");
    const auto not_lm = test::shrink_cli("perplexity " + (dir / "mlp.safetensors").string() + " --tokenizer " + dir.path().string() + " --text x");
    CHECK(not_lm.code == 1);
    CHECK(not_lm.output.find("not a language model") != std::string::npos);
}
