#include "model/model.hpp"
#include "runtime/engine.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

using namespace shrink;

namespace {

/// Plain double-precision forward pass over decoded weights, the reference.
std::vector<double> reference_forward(const model& m, const std::vector<float>& x, int64_t rows) {
    std::vector<double> a(x.begin(), x.end());
    int64_t width = m.input_features;
    for (const layer& l : m.layers) {
        if (l.op == "relu") {
            for (double& v : a) v = std::max(v, 0.0);
        } else if (l.op == "softmax") {
            for (int64_t r = 0; r < rows; ++r) {
                double top = -1e300, sum = 0;
                for (int64_t j = 0; j < width; ++j) top = std::max(top, a[size_t(r * width + j)]);
                for (int64_t j = 0; j < width; ++j) sum += (a[size_t(r * width + j)] = std::exp(a[size_t(r * width + j)] - top));
                for (int64_t j = 0; j < width; ++j) a[size_t(r * width + j)] /= sum;
            }
        } else {
            const tensor& w = m.at(l.weight);
            const std::vector<float> wd = w.decode();
            const std::vector<float> b = l.bias.empty() ? std::vector<float>(size_t(w.shape[0]), 0.0f) : m.at(l.bias).decode();
            const int64_t out = w.shape[0];
            std::vector<double> y(size_t(rows * out));
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t o = 0; o < out; ++o) {
                    double s = b[size_t(o)];
                    for (int64_t i = 0; i < width; ++i) s += a[size_t(r * width + i)] * wd[size_t(o * width + i)];
                    y[size_t(r * out + o)] = s;
                }
            a = std::move(y);
            width = out;
        }
    }
    return a;
}

void check_matches_reference(const model& m, int64_t rows = 5) {
    rng g(11);
    std::vector<float> x(size_t(rows * m.input_features));
    for (float& v : x) v = float(g.uniform());
    const engine e(m);
    const std::vector<float> out = e.run(x.data(), rows);
    const std::vector<double> ref = reference_forward(m, x, rows);
    REQUIRE(out.size() == ref.size());
    for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(ref[i]).margin(1e-5));
}

}  // namespace

TEST_CASE("the engine matches a plain forward pass on a dense model", "[engine]") {
    // 1 and 3 rows take the matrix-vector path, 5 and 300 oneDNN's matmul (with fused ReLU).
    for (int64_t rows : {1, 3, 5, 300}) check_matches_reference(test::tiny_model(5, 40), rows);
    check_matches_reference(test::tiny_model(9, 3000), 2);  // wide enough for the parallel GEMV
}

TEST_CASE("the engine runs quantized, sparse and factorized weights", "[engine]") {
    model m = test::tiny_model(6, 40);
    // fc1: int4 per group of 8, symmetric.
    tensor& w1 = m.at("fc1.weight");
    const uint64_t n1 = tensor::scale_count(w1.shape, {4, true, 8});
    std::vector<int8_t> q(w1.element_count());
    for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int(i % 15) - 7);
    w1 = make_quantized(w1, {4, true, 8}, q, std::vector<float>(n1, 0.03f), {});
    // fc2: sparse.
    tensor& w2 = m.at("fc2.weight");
    w2.mask.assign(w2.element_count(), 1);
    for (size_t i = 0; i < w2.mask.size(); i += 2) w2.mask[i] = 0, w2.values[i] = 0;
    check_matches_reference(m);
    // fc3 replaced by two factors (rank 2) by hand.
    layer fc3 = *m.find_layer("fc3");
    layer a = fc3, b = fc3;
    a.name = "fc3.a", a.weight = "fc3.a.weight", a.bias.clear(), a.output = "fc3.a.out";
    b.name = "fc3.b", b.weight = "fc3.b.weight", b.input = "fc3.a.out";
    tensor ta, tb;
    ta.shape = {2, 8};
    tb.shape = {4, 2};
    for (int i = 0; i < 16; ++i) ta.values.push_back(float(i) * 0.01f);
    for (int i = 0; i < 8; ++i) tb.values.push_back(float(8 - i) * 0.1f);
    m.tensors.erase("fc3.weight");
    m.tensors["fc3.a.weight"] = ta;
    m.tensors["fc3.b.weight"] = tb;
    auto it = std::find_if(m.layers.begin(), m.layers.end(), [](const layer& l) { return l.name == "fc3"; });
    *it = b;
    m.layers.insert(it, a);
    check_matches_reference(m);
}

TEST_CASE("static input quantization rounds inputs onto the 8-bit grid", "[engine]") {
    model m = test::tiny_model(8, 4);
    m.layers[0].input_quantization = input_quant{0.1f, 0};
    std::vector<std::vector<float>> seen;
    const engine e(m);
    const std::vector<float> x{0.04f, 0.26f, 0.5f, 30.0f};
    e.run(x.data(), 1, [&](const std::string& layer, const float* d, int64_t rows, int64_t cols) {
        if (layer == "fc1") seen.emplace_back(d, d + rows * cols);
    });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0][0] == Approx(0.0f));
    CHECK(seen[0][1] == Approx(0.3f));
    CHECK(seen[0][2] == Approx(0.5f));
    CHECK(seen[0][3] == Approx(25.5f));  // clamped at 255 * scale
}

TEST_CASE("the engine runs CNNs the same at every batch size, with buffers reused", "[engine][cnn]") {
    const model m = test::tiny_cnn(9, 12);
    const engine e(m);
    // conv1 absorbs bn1 and relu1, conv2 its leaky_relu; flatten is a view.
    CHECK(e.step_summary() == std::vector<std::string>{"conv1: conv+bn1+relu1", "pool1: max_pool", "conv2: conv+leaky2", "pool2: avg_pool",
                                                       "fc1: linear", "softmax: softmax"});
    // Six values, but never more than two alive at once (softmax runs in place).
    CHECK(e.planned_floats() < e.unplanned_floats());
    CHECK(e.planned_floats() == 4 * 12 * 12 + 4 * 6 * 6);
    rng g(2);
    std::vector<float> x(size_t(300 * 144));
    for (float& v : x) v = float(g.uniform());
    const std::vector<float> all = e.run(x.data(), 300);
    for (int64_t rows : {1, 3, 7}) {
        const std::vector<float> part = e.run(x.data(), rows);
        for (size_t i = 0; i < part.size(); ++i) REQUIRE(part[i] == Approx(all[i]).margin(1e-6));
    }
    // Folding bn1 into conv1 changes nothing: the same model with bn1 after an identity
    // clip (which stops the fold) computes the same outputs.
    model unfolded = test::tiny_cnn(9, 12);
    layer stop = make_layer("stop", "clip", "conv1.out", "stop.out");
    stop.alpha = -1e30f;
    stop.beta = 1e30f;
    unfolded.layers.insert(unfolded.layers.begin() + 1, stop);
    unfolded.find_layer("bn1")->input = "stop.out";
    const std::vector<float> again = engine(unfolded).run(x.data(), 300);
    for (size_t i = 0; i < again.size(); ++i) REQUIRE(again[i] == Approx(all[i]).margin(1e-6));
}
