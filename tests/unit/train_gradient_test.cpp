// Gradient checks: every op's backward pass against central finite differences of the
// loss, in double precision, through the same code the float training runs (only the
// matrix products differ). Then the float path against the double one.
#include "cpu/threading.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

using namespace shrink;

namespace {

tensor random_tensor(std::vector<int64_t> shape, rng& gen, double sd = 0.5, double mean = 0) {
    tensor t;
    t.shape = std::move(shape);
    std::vector<float> values;
    for (uint64_t i = 0; i < t.element_count(); ++i) values.push_back(float(mean + gen.normal() * sd));
    t.values = std::move(values);
    return t;
}

/// A small model [2, 6, 6] -> `body` (which adds layers from "input" and returns its
/// output value) -> flatten -> linear to 4 classes -> softmax.
model around(const std::function<std::string(model&, rng&)>& body, std::vector<int64_t> input_shape = {2, 6, 6}) {
    model m;
    m.input_shape = input_shape;
    m.input_features = 1;
    for (int64_t d : input_shape) m.input_features *= d;
    rng gen(7);
    std::string x = body(m, gen);
    m.layers.push_back(make_layer("flat", "flatten", x, "flat.out"));
    m.output = "flat.out";
    const int64_t width = m.activation_shapes().at("flat.out")[0];
    m.tensors["head.w"] = random_tensor({4, width}, gen);
    m.tensors["head.b"] = random_tensor({4}, gen);
    m.layers.push_back(make_layer("head", "linear", "flat.out", "head.out", "head.w", "head.b"));
    m.layers.push_back(make_layer("softmax", "softmax", "head.out", "probs"));
    m.output = "probs";
    m.validate();
    return m;
}

layer conv_layer(model& m, rng& gen, const std::string& name, const std::string& in, int64_t cin, int64_t cout,
                 int64_t k) {
    m.tensors[name + ".w"] = random_tensor({cout, cin, k, k}, gen);
    m.tensors[name + ".b"] = random_tensor({cout}, gen);
    layer l = make_layer(name, "conv", in, name + ".out", name + ".w", name + ".b");
    l.win.kernel = {k, k};
    return l;
}

struct check_options {
    bool batch_statistics = false;
    double tolerance = 1e-6;
};

/// One thread while it lives: a finite-difference check runs thousands of forward passes of
/// a few rows, whose parallel regions cost far more than they save (and, when ctest runs
/// two test programs at once, the OpenMP threads of each wait on the other's).
struct single_thread {
    int before = cpu::thread_count();
    single_thread() { cpu::set_thread_count(1); }
    ~single_thread() { cpu::set_thread_count(before); }
};

/// Loss = cross-entropy of the logits against fixed labels; compares d loss / d theta for
/// every parameter element and every input element against central differences.
void check_gradients(const model& m, const check_options& co = {}) {
    const single_thread one;
    train::net_options no;
    no.batch_statistics = co.batch_statistics;
    train::net<double> n(m, no);
    const int64_t rows = 3;
    rng gen(11);
    std::vector<double> x(size_t(rows * m.input_features));
    for (double& v : x) v = gen.normal();
    const int64_t classes = n.width(n.logits());
    std::vector<int32_t> labels{0, 2, 3};
    auto loss = [&]() {
        n.forward(x.data(), rows, true);
        std::vector<double>& g = n.grad(n.logits());
        return train::cross_entropy(n.value(n.logits()).data(), labels.data(), rows, classes, 1.0, g.data()) / double(rows);
    };
    loss();
    n.zero_grad();
    n.backward();
    const std::vector<double> input_grad = n.grad(m.input);
    std::vector<std::vector<double>> analytic;
    for (auto& p : n.parameters()) analytic.push_back(p.grad);

    const double h = 1e-6;
    auto compare = [&](double& slot, double want, const std::string& what) {
        const double keep = slot;
        slot = keep + h;
        const double up = loss();
        slot = keep - h;
        const double down = loss();
        slot = keep;
        const double numeric = (up - down) / (2 * h);
        INFO(what << ": analytic " << want << ", numeric " << numeric);
        CHECK(std::abs(numeric - want) <= co.tolerance * std::max(1.0, std::abs(numeric)) + 1e-8);
    };
    for (size_t k = 0; k < n.parameters().size(); ++k) {
        auto& p = n.parameters()[k];
        for (size_t i = 0; i < p.value.size(); ++i) compare(p.value[i], analytic[k][i], p.tensor + "[" + std::to_string(i) + "]");
    }
    for (size_t i = 0; i < x.size(); ++i) compare(x[i], input_grad[i], "input[" + std::to_string(i) + "]");
}

}  // namespace

TEST_CASE("gradients of linear, conv and pooling match central differences", "[train]") {
    SECTION("linear on features") {
        check_gradients(around(
            [](model& m, rng& gen) {
                m.tensors["fc.w"] = random_tensor({5, 12}, gen);
                m.tensors["fc.b"] = random_tensor({5}, gen);
                m.layers.push_back(make_layer("fc", "linear", "input", "fc.out", "fc.w", "fc.b"));
                return std::string("fc.out");
            },
            {12}));
    }
    SECTION("conv with stride, uneven padding and dilation") {
        check_gradients(around([](model& m, rng& gen) {
            layer c = conv_layer(m, gen, "c", "input", 2, 3, 3);
            c.win.strides = {2, 1};
            c.win.pads = {1, 0, 2, 1};
            c.win.dilations = {1, 2};
            m.layers.push_back(c);
            return std::string("c.out");
        }));
    }
    SECTION("max_pool with padding and overlapping windows") {
        check_gradients(around([](model& m, rng&) {
            layer p = make_layer("p", "max_pool", "input", "p.out");
            p.win.kernel = {3, 3};
            p.win.strides = {2, 2};
            p.win.pads = {1, 1, 1, 1};
            m.layers.push_back(p);
            return std::string("p.out");
        }));
    }
    SECTION("max_pool 2x2, stride 2 (its own fast path)") {
        check_gradients(around([](model& m, rng&) {
            layer p = make_layer("p", "max_pool", "input", "p.out");
            p.win.kernel = p.win.strides = {2, 2};
            m.layers.push_back(p);
            return std::string("p.out");
        }));
    }
    for (bool include_pad : {false, true}) {
        SECTION(std::string("avg_pool, padding ") + (include_pad ? "counted" : "not counted")) {
            check_gradients(around([&](model& m, rng&) {
                layer p = make_layer("p", "avg_pool", "input", "p.out");
                p.win.kernel = {3, 2};
                p.win.strides = {2, 2};
                p.win.pads = {1, 0, 1, 1};
                p.win.count_include_pad = include_pad;
                m.layers.push_back(p);
                return std::string("p.out");
            }));
        }
    }
    SECTION("global_avg_pool") {
        check_gradients(around([](model& m, rng&) {
            m.layers.push_back(make_layer("g", "global_avg_pool", "input", "g.out"));
            return std::string("g.out");
        }));
    }
}

TEST_CASE("gradients of batchnorm match central differences in both modes", "[train]") {
    auto body = [](model& m, rng& gen) {
        m.tensors["bn.scale"] = random_tensor({2}, gen, 0.3, 1.0);
        m.tensors["bn.shift"] = random_tensor({2}, gen);
        m.layers.push_back(make_layer("bn", "batchnorm", "input", "bn.out", "bn.scale", "bn.shift"));
        return std::string("bn.out");
    };
    SECTION("batch statistics (training from scratch)") { check_gradients(around(body), {true, 1e-6}); }
    SECTION("fixed affine (fine-tuning)") { check_gradients(around(body)); }
    SECTION("on features") {
        check_gradients(around(
            [](model& m, rng& gen) {
                m.tensors["bn.scale"] = random_tensor({6}, gen, 0.3, 1.0);
                m.tensors["bn.shift"] = random_tensor({6}, gen);
                m.layers.push_back(make_layer("bn", "batchnorm", "input", "bn.out", "bn.scale", "bn.shift"));
                return std::string("bn.out");
            },
            {6}),
            {true, 1e-6});
    }
}

TEST_CASE("gradients of activations and softmax match central differences", "[train]") {
    for (const char* op : {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "clip"}) {
        SECTION(op) {
            check_gradients(around([&](model& m, rng&) {
                layer a = make_layer("a", op, "input", "a.out");
                a.alpha = std::string(op) == "clip" ? -0.7f : 0.1f;
                a.beta = 0.9f;
                m.layers.push_back(a);
                return std::string("a.out");
            }));
        }
    }
    for (const char* op : {"softmax", "log_softmax"}) {
        SECTION(std::string(op) + " inside the graph") {
            check_gradients(around(
                [&](model& m, rng&) {
                    m.layers.push_back(make_layer("s", op, "input", "s.out"));
                    return std::string("s.out");
                },
                {7}));
        }
    }
}

TEST_CASE("gradients of reshape, concat and the binary joins match central differences", "[train]") {
    SECTION("reshape of features into an image, then a conv") {
        check_gradients(around(
            [](model& m, rng& gen) {
                layer r = make_layer("r", "reshape", "input", "r.out");
                r.shape = {2, 3, 4};
                m.layers.push_back(r);
                m.layers.push_back(conv_layer(m, gen, "c", "r.out", 2, 2, 2));
                return std::string("c.out");
            },
            {24}));
    }
    SECTION("concat along channels of a conv and the input") {
        check_gradients(around([](model& m, rng& gen) {
            layer c = conv_layer(m, gen, "c", "input", 2, 3, 3);
            c.win.pads = {1, 1, 1, 1};
            m.layers.push_back(c);
            layer j = make_layer("j", "concat", "c.out", "j.out");
            j.more_inputs = {"input"};
            m.layers.push_back(j);
            return std::string("j.out");
        }));
    }
    SECTION("concat along width") {
        check_gradients(around([](model& m, rng&) {
            layer j = make_layer("j", "concat", "input", "j.out");
            j.more_inputs = {"input"};
            j.axis = 2;
            m.layers.push_back(j);
            return std::string("j.out");
        }));
    }
    for (const char* op : {"add", "sub", "mul", "div"}) {
        SECTION(std::string(op) + " with a broadcast gate [C,1,1]") {
            check_gradients(around([&](model& m, rng& gen) {
                // A squeeze-and-excitation shape: the second operand is pooled from the first.
                m.layers.push_back(make_layer("g", "global_avg_pool", "input", "g.out"));
                layer s = make_layer("s", "sigmoid", "g.out", "s.out");
                m.layers.push_back(s);
                m.layers.push_back(conv_layer(m, gen, "c", "input", 2, 2, 1));
                layer j = make_layer("j", op, "c.out", "j.out");
                j.more_inputs = {"s.out"};
                m.layers.push_back(j);
                return std::string("j.out");
            }));
        }
    }
    SECTION("a residual add of equal shapes") {
        check_gradients(around([](model& m, rng& gen) {
            layer c = conv_layer(m, gen, "c", "input", 2, 2, 3);
            c.win.pads = {1, 1, 1, 1};
            m.layers.push_back(c);
            m.layers.push_back(make_layer("r", "relu", "c.out", "r.out"));
            layer j = make_layer("j", "add", "r.out", "j.out");
            j.more_inputs = {"input"};
            m.layers.push_back(j);
            return std::string("j.out");
        }));
    }
}

TEST_CASE("the distillation and hidden-matching losses have the gradients they claim", "[train]") {
    rng gen(3);
    const int64_t rows = 2, classes = 5;
    std::vector<double> s(size_t(rows * classes)), t(s.size());
    for (double& v : s) v = gen.normal() * 2;
    for (double& v : t) v = gen.normal() * 2;
    for (double temperature : {1.0, 4.0}) {
        std::vector<double> g(s.size(), 0.0);
        train::distillation(s.data(), t.data(), rows, classes, temperature, 1.0, g.data());
        for (size_t i = 0; i < s.size(); ++i) {
            std::vector<double> scratch(s.size());
            const double keep = s[i];
            s[i] = keep + 1e-6;
            const double up = train::distillation(s.data(), t.data(), rows, classes, temperature, 1.0, scratch.data());
            s[i] = keep - 1e-6;
            const double down = train::distillation(s.data(), t.data(), rows, classes, temperature, 1.0, scratch.data());
            s[i] = keep;
            CHECK(std::abs((up - down) / 2e-6 / double(rows) - g[i]) < 1e-7);
        }
        // Zero when the student matches the teacher.
        std::vector<double> scratch(s.size());
        CHECK(std::abs(train::distillation(t.data(), t.data(), rows, classes, temperature, 1.0, scratch.data())) < 1e-12);
    }
    std::vector<double> g(s.size(), 0.0), scratch(s.size());
    train::mean_squared(s.data(), t.data(), rows, classes, 1.0, g.data());
    for (size_t i = 0; i < s.size(); ++i) {
        const double keep = s[i];
        s[i] = keep + 1e-6;
        const double up = train::mean_squared(s.data(), t.data(), rows, classes, 1.0, scratch.data());
        s[i] = keep - 1e-6;
        const double down = train::mean_squared(s.data(), t.data(), rows, classes, 1.0, scratch.data());
        s[i] = keep;
        CHECK(std::abs((up - down) / 2e-6 / double(rows) - g[i]) < 1e-7);
    }
}

TEST_CASE("float training gradients (oneDNN products) agree with the double reference", "[train]") {
    const model m = around([](model& mm, rng& gen) {
        layer c = conv_layer(mm, gen, "c", "input", 2, 4, 3);
        c.win.pads = {1, 1, 1, 1};
        mm.layers.push_back(c);
        mm.tensors["bn.scale"] = random_tensor({4}, gen, 0.3, 1.0);
        mm.tensors["bn.shift"] = random_tensor({4}, gen);
        mm.layers.push_back(make_layer("bn", "batchnorm", "c.out", "bn.out", "bn.scale", "bn.shift"));
        mm.layers.push_back(make_layer("r", "relu", "bn.out", "r.out"));
        layer p = make_layer("p", "max_pool", "r.out", "p.out");
        p.win.kernel = p.win.strides = {2, 2};
        mm.layers.push_back(p);
        return std::string("p.out");
    });
    train::net_options no;
    no.batch_statistics = true;
    train::net<float> f(m, no);
    train::net<double> d(m, no);
    const int64_t rows = 5;
    rng gen(5);
    std::vector<double> xd(size_t(rows * m.input_features));
    for (double& v : xd) v = gen.normal();
    const std::vector<float> xf(xd.begin(), xd.end());
    std::vector<int32_t> labels{0, 1, 2, 3, 0};
    f.forward(xf.data(), rows, true);
    d.forward(xd.data(), rows, true);
    train::cross_entropy(f.value(f.logits()).data(), labels.data(), rows, 4, 1.0, f.grad(f.logits()).data());
    train::cross_entropy(d.value(d.logits()).data(), labels.data(), rows, 4, 1.0, d.grad(d.logits()).data());
    f.zero_grad();
    d.zero_grad();
    f.backward();
    d.backward();
    for (size_t k = 0; k < f.parameters().size(); ++k) {
        const auto& pf = f.parameters()[k];
        const auto& pd = d.parameters()[k];
        double scale = 0;
        for (double v : pd.grad) scale = std::max(scale, std::abs(v));
        for (size_t i = 0; i < pf.grad.size(); ++i) {
            INFO(pf.tensor << "[" << i << "]");
            CHECK(std::abs(double(pf.grad[i]) - pd.grad[i]) <= 1e-4 * scale + 1e-6);  // a bias before batchnorm has none
        }
    }
}

TEST_CASE("training runs a per-token quantized input as the runtime does, its gradient straight through", "[train]") {
    // The head reads 72 flattened values; per token, its input is each row on its own grid.
    model m = around([](model&, rng&) { return std::string("input"); });
    model quantized = m;
    quantized.find_layer("head")->input_quantization = input_quant{1, 0, true};
    const int64_t rows = 3;
    rng gen(5);
    std::vector<float> x(size_t(rows * m.input_features));
    for (float& v : x) v = float(gen.normal()) * (1 + float(&v - x.data()) / 8);  // rows of different sizes
    std::vector<float> quantized_rows = x;
    for (int64_t r = 0; r < rows; ++r) quantize_row_per_token(quantized_rows.data() + r * m.input_features, uint64_t(m.input_features));
    train::net<float> plain(m, {}), q(quantized, {});
    q.forward(x.data(), rows, true);
    plain.forward(quantized_rows.data(), rows, true);
    // The quantized net on x computes what the float net computes on x already quantized.
    CHECK(q.value(q.logits()) == plain.value(plain.logits()));
    // Backward: the input gradient of the quantized net is the float net's (nothing clips).
    for (train::net<float>* n : {&q, &plain}) {
        n->zero_grad();
        std::vector<float>& g = n->grad(n->logits());
        std::fill(g.begin(), g.end(), 0.25f);
        n->backward();
    }
    CHECK(q.grad(m.input) == plain.grad(m.input));
}
