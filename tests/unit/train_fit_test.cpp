// The training loop on real data: the loss falls, runs repeat bit for bit, masks and
// quantized weights hold, optimizers and schedules do what they say.
#include "data/fashion_mnist.hpp"
#include "train/fit.hpp"
#include "train/reference_models.hpp"
#include "train/student.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;

namespace {

const image_set& train_images() {
    static const image_set set = load_fashion_mnist(fashion_mnist_default_dir, "train");
    return set;
}

train::sample_source source(const model& m) {
    train::sample_source s;
    s.count = train_images().count;
    const float scale = m.input_scale;
    s.fill = [scale](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
        const image_set& set = train_images();
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t f = 0; f < set.features; ++f) x[r * set.features + f] = float(set.pixels[size_t(idx[r] * set.features + f)]) * scale;
            labels[r] = set.labels[size_t(idx[r])];
        }
    };
    return s;
}

model small_cnn(uint64_t seed = 1) {
    train_options o;
    o.arch = "cnn";
    o.channels = {4, 8};
    o.hidden = {32};
    o.seed = seed;
    return reference_architecture(o);
}

train::fit_options short_run() {
    train::fit_options f;
    f.epochs = 2;
    f.max_samples = 1500;
    f.batch = 50;
    f.net.batch_statistics = true;
    f.optimizer.learning_rate = 3e-3;
    return f;
}

}  // namespace

TEST_CASE("a short training run of a small CNN lowers the loss and learns", "[train]") {
    model m = small_cnn();
    const model before = m;
    const train::fit_result r = train::fit(m, source(m), short_run());
    REQUIRE(r.epoch_loss.size() == 2);
    CHECK(r.epoch_loss[1] < r.epoch_loss[0]);
    CHECK(r.epoch_loss[0] < std::log(10.0));  // below chance already within the first epoch
    CHECK(r.steps == 60);
    // The folded batchnorm and trained weights classify well above chance (10%).
    CHECK(evaluate_accuracy(m, "", "test") > 0.6);
    CHECK(m.at("conv1.weight").values != before.at("conv1.weight").values);
}

TEST_CASE("training repeats bit for bit for a seed, and another seed differs", "[train]") {
    model a = small_cnn(), b = small_cnn(), c = small_cnn();
    train::fit_options f = short_run();
    f.max_samples = 300;
    train::fit(a, source(a), f);
    train::fit(b, source(b), f);
    f.seed = 2;
    train::fit(c, source(c), f);
    for (const auto& [name, t] : a.tensors) CHECK(t.values == b.at(name).values);
    CHECK(a.at("fc1.weight").values != c.at("fc1.weight").values);
}

TEST_CASE("pruned weights stay zero and quantized weights stay fixed through training", "[train]") {
    model m = small_cnn();
    tensor& w = m.at("fc1.weight");
    w.mask.assign(w.element_count(), 1);
    for (size_t i = 0; i < w.mask.size(); i += 3) {
        w.mask.write()[i] = 0;
        w.values.write()[i] = 0;
    }
    const std::vector<uint8_t> mask = w.mask.to_vector();
    // A quantized weight (int8, one scale): training must leave it on its grid.
    tensor& q = m.at("fc2.weight");
    const std::vector<float> dense = q.values.to_vector();
    float top = 0;
    for (float v : dense) top = std::max(top, std::abs(v));
    std::vector<int8_t> codes;
    for (float v : dense) codes.push_back(int8_t(std::lrint(v / top * 127)));
    q = make_quantized(q, quant_spec{8, true, 0}, codes, {top / 127}, {});
    const tensor quantized = q;
    for (const char* opt : {"adamw", "sgd"}) {
        train::fit_options f = short_run();
        f.max_samples = 500;
        f.optimizer.kind = opt;
        f.optimizer.learning_rate = std::string(opt) == "sgd" ? 0.05 : 3e-3;
        f.optimizer.weight_decay = 0.01;
        train::fit(m, source(m), f);
        const tensor& after = m.at("fc1.weight");
        CHECK(after.mask == mask);
        size_t nonzero_pruned = 0;
        for (size_t i = 0; i < mask.size(); ++i) nonzero_pruned += !mask[i] && after.values[i] != 0;
        CHECK(nonzero_pruned == 0);
        CHECK(m.at("fc2.weight").q == quantized.q);
        CHECK(m.at("fc2.weight").scales == quantized.scales);
    }
}

TEST_CASE("learning-rate schedules follow their definitions", "[train]") {
    train::optimizer_options o;
    o.learning_rate = 0.1;
    CHECK(train::scheduled_rate(o, 7, 10, 5) == 0.1);
    o.schedule = "cosine";
    CHECK(train::scheduled_rate(o, 0, 10, 5) == Approx(0.1));
    CHECK(train::scheduled_rate(o, 5, 10, 5) == Approx(0.05));
    CHECK(train::scheduled_rate(o, 10, 10, 5) == Approx(0.0).margin(1e-12));
    o.schedule = "step";
    o.step_epochs = 2;
    o.step_gamma = 0.5;
    CHECK(train::scheduled_rate(o, 4, 100, 5) == Approx(0.1));    // epoch 0
    CHECK(train::scheduled_rate(o, 10, 100, 5) == Approx(0.05));  // epoch 2
    CHECK(train::scheduled_rate(o, 20, 100, 5) == Approx(0.025)); // epoch 4
    o.schedule = "linear";
    CHECK_THROWS_WITH(train::check(o), Catch::Matchers::Contains("schedule 'linear'"));
}

TEST_CASE("SGD with momentum and AdamW take the steps their formulas give", "[train]") {
    std::vector<train::parameter<float>> ps(1);
    ps[0].value = {1.0f, -2.0f};
    ps[0].grad = {0.5f, 0.25f};
    ps[0].decays = true;
    train::optimizer_options o;
    o.kind = "sgd";
    o.momentum = 0.9;
    o.weight_decay = 0.1;
    train::optimizer sgd(o);
    sgd.step(ps, 0.1);  // v = g + wd * w; w -= lr * v
    CHECK(ps[0].value[0] == Approx(1.0 - 0.1 * (0.5 + 0.1)));
    sgd.step(ps, 0.1);  // v = 0.9 v + g + wd * w
    const double w1 = 1.0 - 0.1 * 0.6, v2 = 0.9 * 0.6 + 0.5 + 0.1 * w1;
    CHECK(ps[0].value[0] == Approx(w1 - 0.1 * v2));

    ps[0].value = {1.0f, -2.0f};
    o.kind = "adamw";
    train::optimizer adamw(o);
    adamw.step(ps, 0.01);  // first step: m/c1 = g, v/c2 = g^2, so the step is lr * sign(g), after decay
    CHECK(ps[0].value[0] == Approx(1.0 * (1 - 0.01 * 0.1) - 0.01).epsilon(1e-5));
    CHECK(ps[0].value[1] == Approx(-2.0 * (1 - 0.01 * 0.1) - 0.01).epsilon(1e-5));
}

TEST_CASE("a student keeps the graph with narrower hidden layers and fresh weights", "[train]") {
    const model teacher = small_cnn();
    const model s = make_student(teacher, 0.5, 9);
    CHECK(s.at("conv1.weight").shape == std::vector<int64_t>{2, 1, 3, 3});
    CHECK(s.at("conv2.weight").shape == std::vector<int64_t>{4, 2, 3, 3});
    CHECK(s.at("bn2.scale").shape == std::vector<int64_t>{4});
    CHECK(s.at("fc1.weight").shape == std::vector<int64_t>{16, 4 * 7 * 7});
    CHECK(s.at("fc2.weight").shape == std::vector<int64_t>{10, 16});  // the output keeps its width
    CHECK(s.layers.size() == teacher.layers.size());
    CHECK_THROWS_WITH(make_student(teacher, 0, 1), Catch::Matchers::Contains("width_scale"));
}

TEST_CASE("training refuses what it cannot train, naming it", "[train]") {
    model m = small_cnn();
    m.find_layer("conv2")->win.group = 2;
    m.at("conv2.weight").shape = {8, 2, 3, 3};
    m.at("conv2.weight").values.assign(8 * 2 * 9, 0.0f);
    CHECK_THROWS_WITH(train::net<float>(m), Catch::Matchers::Contains("layer 'conv2'") && Catch::Matchers::Contains("group"));
    model ok = small_cnn();
    train::fit_options f = short_run();
    f.alpha = 0.5;
    CHECK_THROWS_WITH(train::fit(ok, source(ok), f), Catch::Matchers::Contains("teacher"));
}
