// Block-by-block runs (run/block_feed.hpp): the engine's cut of a model into blocks, and
// a pass whose later blocks see the samples through weights changed after earlier ones
// (GPTQ's sequential calibration).
#include "cpu/engine.hpp"
#include "model/surgery.hpp"
#include "run/block_feed.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>

using namespace shrink;

namespace {

/// Every layer input a full forward pass of `m` shows, batch by batch as forward_batches
/// runs them, concatenated per layer.
std::map<std::string, std::vector<float>> full_pass_inputs(const model& m, const split_view& view) {
    engine e(m);
    std::map<std::string, std::vector<float>> seen;
    batch_observer o;
    o.on_layer_input = [&](const std::string& layer, const float* data, int64_t rows, int64_t cols) {
        seen[layer].insert(seen[layer].end(), data, data + rows * cols);
    };
    o.on_output = [](const float*, int64_t, int64_t, const int32_t*, double) {};
    forward_batches(m, view, 0, e, o);
    return seen;
}

}  // namespace

TEST_CASE("the engine cuts a decoder into its embedding, blocks, final norm and head, which run as the whole", "[blocks]") {
    const decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 5);
    const engine e(m);
    std::vector<std::string> names;
    for (const auto& b : e.blocks()) names.push_back(b.name);
    REQUIRE(names.size() == 5);
    CHECK(names[0] == "embed_tokens");
    CHECK(names[1] == "layers.0");
    CHECK(names[2] == "layers.1");
    CHECK(names[4] == "lm_head");
    CHECK(e.blocks()[1].layers == std::vector<std::string>{"layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj",
                                                            "layers.0.self_attn.v_proj", "layers.0.self_attn.o_proj",
                                                            "layers.0.mlp.gate_proj", "layers.0.mlp.up_proj",
                                                            "layers.0.mlp.down_proj"});
    for (size_t b = 1; b < e.blocks().size(); ++b) CHECK(e.blocks()[b].in_width == s.hidden);

    // Block after block gives the logits of one run, to the bit.
    const std::vector<std::vector<int>> windows{{1, 5, 9, 2, 7, 3}, {4, 4, 8, 1, 0, 6}};
    std::vector<float> tokens;
    for (const auto& w : windows)
        for (size_t t = 0; t < w.size(); ++t) tokens.insert(tokens.end(), {float(w[t]), float(t)});
    const int64_t rows = int64_t(tokens.size() / 2);
    std::vector<float> carried, out;
    for (size_t b = 0; b < e.blocks().size(); ++b) {
        out.assign(size_t(rows * e.blocks()[b].out_width), 0.0f);
        e.run_block(b, tokens.data(), carried.data(), rows, {}, out.data());
        carried.swap(out);
    }
    CHECK(carried == e.run(tokens.data(), rows, [](const std::string&, const float*, int64_t, int64_t) {}));
}

TEST_CASE("an MLP's blocks are its layers, and a changed weight under a fused activation is re-read", "[blocks]") {
    model mlp = test::tiny_model(3, 16);
    engine e(mlp);
    REQUIRE(e.blocks().size() >= 2);
    CHECK(e.blocks()[0].layers.size() == 1);
    CHECK_FALSE(e.reload_weights(mlp));
    const layer& first = mlp.layers[0];
    std::vector<float> w = mlp.at(first.weight).decode();
    for (float& v : w) v = -v;
    mlp.at(first.weight) = dense_tensor(first.weight, mlp.at(first.weight).shape, w.data(), w.size(), nullptr);
    CHECK(e.reload_weights(mlp));
    std::vector<float> x(16, 0.5f);
    CHECK(e.run(x.data(), 1) == engine(mlp).run(x.data(), 1));
}

TEST_CASE("a model with convolutions has no blocks, and a block-by-block run refuses it", "[blocks]") {
    const model cnn = test::tiny_cnn();
    CHECK(engine(cnn).blocks().empty());
    image_set images;
    images.features = 64;
    images.pixels.assign(64 * 2, 3);
    images.labels = {1, 2};
    split_view view;
    view.images = &images;
    view.indices = {0, 1};
    CHECK_THROWS_WITH(forward_blocks(cnn, view, 0, {}), Catch::Contains("without convolutions"));
}

TEST_CASE("a block-by-block run shows every layer the inputs of a full run, and later blocks inputs through changed weights",
          "[blocks]") {
    const decoder_shape s = test::tiny_decoder_shape();
    model m = test::random_decoder(s, 9);
    // 80 windows of 16 tokens: a batch of 64 windows (1,024 tokens) and one of 16.
    const test::random_text text(80, 16, s.vocab, 3);
    const auto expected = full_pass_inputs(m, text.view);

    std::map<std::string, std::vector<float>> seen;
    std::vector<std::string> ends;
    block_observer o;
    o.on_layer_input = [&](const std::string& layer, const float* data, int64_t rows, int64_t cols) {
        seen[layer].insert(seen[layer].end(), data, data + rows * cols);
    };
    o.on_block_end = [&](const engine::block& b, size_t index, size_t count) {
        ends.push_back(b.name + " " + std::to_string(index) + "/" + std::to_string(count));
    };
    const block_pass unchanged = forward_blocks(m, text.view, 0, o);
    CHECK(ends == std::vector<std::string>{"embed_tokens 0/5", "layers.0 1/5", "layers.1 2/5", "norm 3/5", "lm_head 4/5"});
    CHECK(unchanged.rerun == 0);
    CHECK(unchanged.samples == 80);
    CHECK(unchanged.stream_bytes == block_stream_bytes(80 * 16, uint64_t(s.hidden)));
    REQUIRE(seen.size() == expected.size());
    for (const auto& [layer, values] : expected) {
        INFO(layer);
        CHECK(seen[layer] == values);  // the same kernels on the same batches: to the bit
    }

    // Sequential: after block 0, its down_proj halves. Block 1 then sees what a full run
    // of the changed model shows it; block 0 saw the original's.
    seen.clear();
    const std::string down = "model.layers.0.mlp.down_proj.weight";
    model changed = m;
    {
        std::vector<float> w = changed.at(down).decode();
        for (float& v : w) v *= 0.5f;
        changed.at(down) = dense_tensor(down, changed.at(down).shape, w.data(), w.size(), nullptr);
    }
    o.on_block_end = [&](const engine::block& b, size_t, size_t) {
        if (b.name == "layers.0") m.at(down) = changed.at(down);
    };
    const block_pass sequential = forward_blocks(m, text.view, 0, o);
    CHECK(sequential.rerun == 1);
    const auto through_changed = full_pass_inputs(changed, text.view);
    CHECK(seen["layers.0.self_attn.q_proj"] == expected.at("layers.0.self_attn.q_proj"));
    CHECK(seen["layers.0.mlp.down_proj"] == expected.at("layers.0.mlp.down_proj"));
    CHECK(seen["layers.1.self_attn.q_proj"] != expected.at("layers.1.self_attn.q_proj"));
    for (const char* layer : {"layers.1.self_attn.q_proj", "layers.1.self_attn.o_proj", "layers.1.mlp.down_proj", "lm_head"}) {
        INFO(layer);
        CHECK(seen[layer] == through_changed.at(layer));
    }

    // A tied head's table is the embedding's: writing it at the head's end is re-read too.
    decoder_shape tied_shape = s;
    tied_shape.tied = true;
    model tied = test::random_decoder(tied_shape, 4);
    const std::string table = "model.embed_tokens.weight";
    block_observer at_head;
    at_head.on_block_end = [&](const engine::block& b, size_t, size_t) {
        if (b.name != "lm_head") return;
        std::vector<float> w = tied.at(table).decode();
        tied.at(table) = dense_tensor(table, tied.at(table).shape, w.data(), w.size(), nullptr);
    };
    CHECK_NOTHROW(forward_blocks(tied, text.view, 0, at_head));

    // A graph change in the middle of the pass is refused.
    o.on_block_end = [&](const engine::block& b, size_t, size_t) {
        if (b.name == "layers.0") m.layers.back().name = "renamed";
    };
    CHECK_THROWS_WITH(forward_blocks(m, text.view, 0, o), Catch::Contains("graph changed"));
}
