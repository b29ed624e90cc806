// Training language models: the decoder ops' backward passes (embedding, rms_norm, causal
// attention with rotary embeddings and grouped key/value heads) against central finite
// differences in double; the training forward pass against the runtime's logits; and a
// few steps on text windows that lower the loss the same way on any thread count.
#include "cpu/threading.hpp"
#include "model/decoder.hpp"
#include "support.hpp"
#include "train/fit.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace shrink;

namespace {

/// Two windows of 4 and 3 tokens as [id, position] rows, labelled with the next token
/// (-1 at each window's end).
struct token_batch {
    std::vector<double> x;
    std::vector<int32_t> labels;
    int64_t rows = 0;
};

token_batch two_windows(const std::vector<std::vector<int>>& windows) {
    token_batch b;
    for (const auto& w : windows)
        for (size_t t = 0; t < w.size(); ++t) {
            b.x.insert(b.x.end(), {double(w[t]), double(t)});
            b.labels.push_back(t + 1 < w.size() ? w[t + 1] : -1);
            ++b.rows;
        }
    return b;
}

struct single_thread {
    int before = cpu::thread_count();
    single_thread() { cpu::set_thread_count(1); }
    ~single_thread() { cpu::set_thread_count(before); }
};

void check_decoder_gradients(const decoder_shape& s) {
    const single_thread one;
    const model m = test::random_decoder(s, 5);
    train::net<double> n(m);
    const token_batch b = two_windows({{3, 1, 4, 1}, {5, 9, 2}});
    const int64_t vocab = n.width(n.logits());
    auto loss = [&]() {
        n.forward(b.x.data(), b.rows, true);
        std::vector<double>& g = n.grad(n.logits());
        return train::cross_entropy(n.value(n.logits()).data(), b.labels.data(), b.rows, vocab, 1.0, g.data()) / 5.0;
    };
    loss();
    n.zero_grad();
    n.backward();
    std::vector<std::vector<double>> analytic;
    for (auto& p : n.parameters()) analytic.push_back(p.grad);
    const double h = 1e-6;
    int checked = 0;
    for (size_t k = 0; k < n.parameters().size(); ++k) {
        auto& p = n.parameters()[k];
        for (size_t i = 0; i < p.value.size(); ++i) {
            const double keep = p.value[i];
            p.value[i] = keep + h;
            const double up = loss();
            p.value[i] = keep - h;
            const double down = loss();
            p.value[i] = keep;
            const double numeric = (up - down) / (2 * h);
            INFO(p.tensor << "[" << i << "]: analytic " << analytic[k][i] << ", numeric " << numeric);
            CHECK(std::abs(numeric - analytic[k][i]) <= 1e-6 * std::max(1.0, std::abs(numeric)) + 1e-8);
            ++checked;
        }
    }
    CHECK(checked == int(m.parameter_count()));
}

}  // namespace

TEST_CASE("decoder gradients match central differences", "[train][decoder]") {
    decoder_shape s;
    s.vocab = 11, s.hidden = 8, s.intermediate = 12, s.layers = 2, s.heads = 4, s.kv_heads = 2, s.head_dim = 2;
    s.rope_theta = 100, s.rms_eps = 1e-5f;
    SECTION("untied head, grouped key/value heads") { check_decoder_gradients(s); }
    SECTION("tied head (one table, two gradients), q/k/v biases, one key/value head") {
        s.tied = true, s.qkv_bias = true, s.kv_heads = 1, s.head_dim = 4;
        check_decoder_gradients(s);
    }
}

TEST_CASE("the training forward pass computes the runtime's logits", "[train][decoder]") {
    const decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 9);
    const std::vector<std::vector<int>> windows{{1, 2, 3, 4, 5, 6}, {7, 8, 9}, {36, 0}};
    const std::vector<float> want = test::decoder_logits(m, windows);
    train::net<float> n(m);
    std::vector<float> x;
    for (const auto& w : windows)
        for (size_t t = 0; t < w.size(); ++t) x.insert(x.end(), {float(w[t]), float(t)});
    n.forward(x.data(), int64_t(x.size() / 2), false);
    const std::vector<float>& got = n.value(n.logits());
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(2e-4));
}

TEST_CASE("a decoder trains on text windows, the same on 1 and 2 threads", "[train][decoder]") {
    const decoder_shape s = test::tiny_decoder_shape();
    // A repetitive "text" of 37 ids: windows of 16, labelled with the next token.
    std::vector<int> ids;
    for (int i = 0; i < 16 * 24; ++i) ids.push_back((i * 7 + i / 5) % 37);
    train::sample_source data;
    data.count = 24;
    data.rows_per_sample = 16;
    data.fill = [&](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
        for (int64_t w = 0; w < rows; ++w)
            for (int64_t t = 0; t < 16; ++t) {
                x[(w * 16 + t) * 2] = float(ids[size_t(idx[w] * 16 + t)]);
                x[(w * 16 + t) * 2 + 1] = float(t);
                labels[w * 16 + t] = t + 1 < 16 ? ids[size_t(idx[w] * 16 + t + 1)] : -1;
            }
    };
    train::fit_options o;
    o.epochs = 6;
    o.batch = 4;
    o.seed = 3;
    o.optimizer.kind = "adamw";
    o.optimizer.learning_rate = 0.01;
    auto train_with = [&](int threads) {
        const int before = cpu::thread_count();
        cpu::set_thread_count(threads);
        model m = test::random_decoder(s, 4);
        const train::fit_result r = train::fit(m, data, o);
        cpu::set_thread_count(before);
        return std::make_pair(m, r);
    };
    const auto [one, r1] = train_with(1);
    const auto [two, r2] = train_with(2);
    INFO("first epoch " << r1.epoch_loss.front() << ", last " << r1.epoch_loss.back());
    CHECK(r1.epoch_loss.back() < 0.5 * r1.epoch_loss.front());
    CHECK(r1.epoch_loss == r2.epoch_loss);
    CHECK(one.at("model.layers.1.self_attn.k_proj.weight").values.to_vector() ==
          two.at("model.layers.1.self_attn.k_proj.weight").values.to_vector());
    CHECK(one.at("model.embed_tokens.weight").values.to_vector() == two.at("model.embed_tokens.weight").values.to_vector());
}
