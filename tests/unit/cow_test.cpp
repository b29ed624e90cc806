// Weights are not copied needlessly: a loaded model reads its dense payloads in place from
// the mapped file, a copy of a model (a fork of the model state) shares every payload, and
// a write gives only the written tensor storage of its own.
#include "cpu/engine.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;

TEST_CASE("a loaded model's dense payloads are views of the mapped file", "[cow]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    const model m = load_model(dir / "m.safetensors");
    for (const auto& [name, t] : m.tensors) {
        INFO(name);
        CHECK(t.values.is_view());
    }
    // The mapping outlives the file's name and the model it came from.
    std::filesystem::remove(dir / "m.safetensors");
    const model copy = m;
    CHECK(copy.at("fc1.weight").decode() == test::tiny_model().at("fc1.weight").decode());
}

TEST_CASE("a forked model shares tensors until one side writes (copy-on-write per tensor)", "[cow]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    const model parent = load_model(dir / "m.safetensors");
    model child = parent;
    for (const auto& [name, t] : parent.tensors) CHECK(child.at(name).values.shares_storage_with(t.values));

    const std::vector<float> before = parent.at("fc2.weight").decode();
    child.at("fc2.weight").values.write()[0] = 42.0f;
    CHECK(child.at("fc2.weight").values[0] == 42.0f);
    CHECK(parent.at("fc2.weight").decode() == before);  // the parent never sees the child's write
    CHECK_FALSE(child.at("fc2.weight").values.shares_storage_with(parent.at("fc2.weight").values));
    CHECK(child.at("fc1.weight").values.shares_storage_with(parent.at("fc1.weight").values));  // untouched: still shared

    // A second write to the now-owned payload does not copy again.
    const float* owned = child.at("fc2.weight").values.data();
    child.at("fc2.weight").values.write()[1] = 1.0f;
    CHECK(child.at("fc2.weight").values.data() == owned);
}

TEST_CASE("a weight too large to copy per batch size is multiplied where it lies, with the same results", "[cow][engine]") {
    // 2100 x 2048 floats (16.4 MiB) is past the engine's in-place threshold; 2048 x 16 is not.
    model m;
    m.input_features = 2048;
    rng g(5);
    test::add_random_tensor(m, g, "big.weight", {2100, 2048}, 0.02);
    test::add_random_tensor(m, g, "big.bias", {2100}, 0.01);
    m.layers.push_back(make_layer("big", "linear", "input", "big.out", "big.weight", "big.bias"));
    m.layers.push_back(make_layer("relu", "relu", "big.out", "relu.out"));
    m.output = "relu.out";
    m.validate();
    const int64_t rows = 40;  // past the matrix-vector path and split across threads
    std::vector<float> x(size_t(rows * m.input_features));
    for (float& v : x) v = float(g.uniform());
    const std::vector<float> out = engine(m).run(x.data(), rows);
    const tensor& w = m.at("big.weight");
    const tensor& b = m.at("big.bias");
    for (int64_t r = 0; r < rows; r += 13)
        for (int64_t o = 0; o < 2100; o += 97) {
            double sum = b.values[size_t(o)];
            for (int64_t k = 0; k < 2048; ++k) sum += double(w.values[size_t(o * 2048 + k)]) * x[size_t(r * 2048 + k)];
            REQUIRE(out[size_t(r * 2100 + o)] == Approx(std::max(sum, 0.0)).margin(1e-4));
        }
}
