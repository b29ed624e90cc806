#include "cpu/threading.hpp"
#include "model/model.hpp"
#include "cpu/engine.hpp"
#include "cpu/int8_linear.hpp"
#include "model/surgery.hpp"
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
    for (size_t i = 0; i < w2.mask.size(); i += 2) w2.mask.write()[i] = 0, w2.values.write()[i] = 0;
    check_matches_reference(m);
    // fc3 replaced by two factors (rank 2) by hand.
    layer fc3 = *m.find_layer("fc3");
    layer a = fc3, b = fc3;
    a.name = "fc3.a", a.weight = "fc3.a.weight", a.bias.clear(), a.output = "fc3.a.out";
    b.name = "fc3.b", b.weight = "fc3.b.weight", b.input = "fc3.a.out";
    tensor ta, tb;
    ta.shape = {2, 8};
    tb.shape = {4, 2};
    std::vector<float> va, vb;
    for (int i = 0; i < 16; ++i) va.push_back(float(i) * 0.01f);
    for (int i = 0; i < 8; ++i) vb.push_back(float(8 - i) * 0.1f);
    ta.values = va;
    tb.values = vb;
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

TEST_CASE("per-token input quantization puts each row on its own 8-bit grid, whatever the other rows hold", "[engine]") {
    model m = test::tiny_model(8, 4);
    set_input_quantization_per_token(m, "fc1");
    const engine e(m);
    // Row 0 alone, then beside a row a thousand times larger: a per-tensor scale would
    // flatten row 0 to zeros, a per-token one leaves it as it was.
    const std::vector<float> small{0.04f, -0.26f, 0.5f, 0.127f}, big{1000, -2, 3, 500};
    std::vector<float> both = small;
    both.insert(both.end(), big.begin(), big.end());
    std::vector<std::vector<float>> seen;
    auto watch = [&](const std::string& layer, const float* d, int64_t rows, int64_t cols) {
        if (layer == "fc1") seen.emplace_back(d, d + rows * cols);
    };
    const std::vector<float> alone = e.run(small.data(), 1, watch), together = e.run(both.data(), 2, watch);
    REQUIRE(seen.size() == 2);
    const uint64_t out = alone.size();
    CHECK(std::vector<float>(together.begin(), together.begin() + long(out)) == alone);
    CHECK(std::vector<float>(seen[1].begin(), seen[1].begin() + 4) == seen[0]);
    // Each row: scale = its absmax / 127, every value a whole multiple of it within half a
    // step of the input, the largest value kept exactly.
    for (const std::vector<float>* row : {&small, &big}) {
        const float* q = seen[1].data() + (row == &small ? 0 : 4);
        float absmax = 0;
        for (float v : *row) absmax = std::max(absmax, std::fabs(v));
        const float scale = absmax / 127;
        for (size_t i = 0; i < 4; ++i) {
            INFO(i);
            const float steps = q[i] / scale;
            CHECK(std::fabs(steps - std::nearbyint(steps)) < 1e-3f);
            CHECK(std::fabs(steps) <= 127.001f);
            CHECK(std::fabs(q[i] - (*row)[i]) <= scale / 2 * 1.0001f);
        }
    }
    CHECK(seen[1][4] == 1000.0f);
    // A row of zeros stays zeros.
    std::vector<float> zeros(4, 0.0f);
    seen.clear();
    e.run(zeros.data(), 1, watch);
    CHECK(seen[0] == zeros);
    // Only linear layers: per-token rows are tokens.
    model cnn = test::tiny_cnn(1);
    CHECK_THROWS_WITH(set_input_quantization_per_token(cnn, "conv1"), Catch::Contains("is not a linear layer"));
}

TEST_CASE("W8A8 linear layers run on the integer matmul and agree with the float simulation", "[engine][int8]") {
    // Symmetric int8 weights, one scale per row (fc3: one for the whole tensor), and static
    // 8-bit inputs: fc1's on [0, 1], the others' on a grid with a zero point.
    model m = test::tiny_model(11, 40);
    for (const char* name : {"fc1", "fc2", "fc3"}) {
        tensor& w = m.tensors.at(std::string(name) + ".weight");
        const std::vector<float> v = w.decode();
        const uint64_t rows = w.rows(), cols = w.cols();
        const bool per_row = std::string(name) != "fc3";
        std::vector<float> scales(per_row ? rows : 1, 0.0f);
        for (uint64_t i = 0; i < v.size(); ++i) scales[per_row ? i / cols : 0] = std::max(scales[per_row ? i / cols : 0], std::fabs(v[i]) / 127);
        std::vector<int8_t> q(v.size());
        for (uint64_t i = 0; i < v.size(); ++i) q[i] = int8_t(std::nearbyint(v[i] / scales[per_row ? i / cols : 0]));
        w.quant = quant_spec{8, true, per_row ? cols : 0};
        w.q = std::move(q);
        w.scales = std::move(scales);
        w.values = {};
    }
    m.layers[0].input_quantization = input_quant{1.0f / 255, 0};
    m.layers[2].input_quantization = input_quant{0.01f, 3};
    m.layers[4].input_quantization = input_quant{0.02f, 128};
    const engine integer(m), simulated(m, false);
    // Where oneDNN's int8 sums would saturate (no VNNI), the engine keeps the simulation.
    if (cpu::int8_matmul_exact())
        CHECK(integer.step_summary() == std::vector<std::string>{"fc1: linear int8+relu1", "fc2: linear int8+relu2", "fc3: linear int8", "softmax: softmax"});
    else
        CHECK(integer.step_summary() == simulated.step_summary());
    CHECK(simulated.step_summary()[0] == "fc1: linear+relu1");
    rng g(3);
    std::vector<float> x(size_t(200 * 40));
    for (float& v : x) v = float(g.uniform());
    for (int64_t rows : {1, 5, 200}) {
        const std::vector<float> a = integer.run(x.data(), rows), b = simulated.run(x.data(), rows);
        REQUIRE(a.size() == b.size());
        double worst = 0;
        for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
        INFO("rows " << rows);
        CHECK(worst < 1e-5);  // integer sums are exact; the simulation's float sums round
    }
    // The observer sees the same quantized inputs on both paths.
    std::vector<float> seen_int, seen_sim;
    integer.run(x.data(), 2, [&](const std::string& l, const float* d, int64_t r, int64_t c) { if (l == "fc2") seen_int.assign(d, d + r * c); });
    simulated.run(x.data(), 2, [&](const std::string& l, const float* d, int64_t r, int64_t c) { if (l == "fc2") seen_sim.assign(d, d + r * c); });
    CHECK(seen_int == seen_sim);
}

TEST_CASE("the int8 matmul sums exactly where the engine uses it, and saturates where it does not", "[engine][int8]") {
    // Inputs at 255 against weights at 127: each pair of products is 64,770, past the
    // 16-bit sums of a CPU without VNNI.
    const int64_t m = 4, n = 3, k = 64;
    const std::vector<int8_t> codes(size_t(n * k), 127);
    const std::vector<float> scales(size_t(n), 1.0f), bias(size_t(n), 0.0f);
    const cpu::kernel kern = cpu::make_int8_linear_kernel(m, n, k, codes.data(), scales.data(), {1.0f, 0}, bias.data(), false);
    const std::vector<float> x(size_t(m * k), 255.0f);
    std::vector<float> y(size_t(m * n));
    kern.run(x.data(), y.data());
    const float exact = 255.0f * 127.0f * float(k);
    bool all_exact = true;
    for (float v : y) all_exact = all_exact && v == exact;
    INFO("exact " << exact << ", got " << y[0]);
    CHECK(all_exact == cpu::int8_matmul_exact());
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

namespace {

/// conv(16) relu max_pool tanh conv(16) relu max_pool flatten linear(10) softmax on
/// 1x12x12: 16 channels fill oneDNN's 8- and 16-channel blocks exactly. The relus fuse
/// into the convs; the tanh runs alone.
model blocked_cnn(uint64_t seed) {
    model m;
    m.input_shape = {1, 12, 12};
    m.input_features = 144;
    rng gen(seed);
    auto random = [&](const std::string& name, std::vector<int64_t> shape, double sd) {
        return test::add_random_tensor(m, gen, name, std::move(shape), sd);
    };
    std::string x = m.input;
    auto add = [&](layer l) {
        m.layers.push_back(std::move(l));
        return x = m.layers.back().output;
    };
    for (int i : {1, 2}) {
        const std::string n = std::to_string(i);
        layer c = make_layer("conv" + n, "conv", x, "conv" + n + ".out", random("conv" + n + ".weight", {16, i == 1 ? 1 : 16, 3, 3}, 0.3),
                             random("conv" + n + ".bias", {16}, 0.1));
        c.win.kernel = {3, 3};
        c.win.pads = {1, 1, 1, 1};
        add(c);
        add(make_layer("relu" + n, "relu", x, "relu" + n + ".out"));
        layer p = make_layer("pool" + n, "max_pool", x, "pool" + n + ".out");
        p.win.kernel = p.win.strides = {2, 2};
        add(p);
        if (i == 1) add(make_layer("tanh", "tanh", x, "tanh.out"));
    }
    add(make_layer("flatten", "flatten", x, "flat"));
    add(make_layer("fc1", "linear", x, "fc1.out", random("fc1.weight", {10, 16 * 3 * 3}, 0.3), random("fc1.bias", {10}, 0.1)));
    m.output = add(make_layer("softmax", "softmax", x, "probs"));
    m.validate();
    return m;
}

/// The engine's output on random images, in blocked layouts and all plain (an observer of
/// layer inputs keeps every value plain): the two must agree.
void check_layouts_agree(const model& m, int64_t rows) {
    rng g(4);
    std::vector<float> x(size_t(rows * m.input_features));
    for (float& v : x) v = float(g.uniform());
    const engine e(m);
    const std::vector<float> fast = e.run(x.data(), rows);
    const std::vector<float> plain = e.run(x.data(), rows, [](const std::string&, const float*, int64_t, int64_t) {});
    REQUIRE(fast.size() == plain.size());
    for (size_t i = 0; i < fast.size(); ++i) REQUIRE(fast[i] == Approx(plain[i]).margin(1e-5));
}

}  // namespace

TEST_CASE("conv outputs stay blocked through pooling up to the linear head", "[engine][cnn]") {
    const model m = blocked_cnn(3);
    // 100 rows on 2 threads run as two parts of 50, one per thread.
    const int threads = cpu::thread_count();
    cpu::set_thread_count(2);
    for (int64_t rows : {1, 8, 100}) {
        INFO("rows " << rows);
        // No conversion anywhere: the head reads the pooled blocks with its columns shuffled.
        CHECK(engine(m).layout_summary(rows) == std::vector<std::string>{"conv1: plain -> blocked", "pool1: blocked -> blocked",
                                                                          "tanh: blocked -> blocked", "conv2: blocked -> blocked",
                                                                          "pool2: blocked -> blocked",
                                                                          "fc1: blocked read by shuffled weights -> plain",
                                                                          "softmax: plain -> plain"});
        check_layouts_agree(m, rows);
    }
    cpu::set_thread_count(threads);
}

TEST_CASE("a residual join adds two blocked values as they lie", "[engine][cnn]") {
    // blocked_cnn with a skip: relu2's output plus the tanh before conv2 (both 16x6x6).
    model m = blocked_cnn(8);
    layer join = make_layer("skip", "add", "relu2.out", "skip.out");
    join.more_inputs = {"tanh.out"};
    m.layers.insert(m.layers.begin() + 6, join);
    m.find_layer("pool2")->input = "skip.out";
    m.validate();
    const std::vector<std::string> layouts = engine(m).layout_summary(4);
    CHECK(layouts[4] == "skip: blocked + blocked -> blocked");
    check_layouts_agree(m, 4);
    // tanh.out stays alive across conv2 for the join, so conv2 writes into conv1's
    // (larger, free) buffer; the join runs in place there, and pool2 takes tanh's.
    CHECK(engine(m).planned_floats() == 16 * 12 * 12 + 16 * 6 * 6);
}

TEST_CASE("a per-channel gate scales a blocked value as it lies", "[engine][cnn]") {
    // blocked_cnn with a squeeze-and-excitation gate on the tanh's output: its channels
    // pooled, a sigmoid, reshaped to [16, 1, 1], multiplied in before conv2.
    model m = blocked_cnn(9);
    const long at = long(m.find_layer("conv2") - m.layers.data());
    layer shaped = make_layer("gate4", "reshape", "gate.out", "gate4.out");
    shaped.shape = {16, 1, 1};
    layer gated = make_layer("gated", "mul", "tanh.out", "gated.out");
    gated.more_inputs = {"gate4.out"};
    m.layers.insert(m.layers.begin() + at, {make_layer("squeeze", "global_avg_pool", "tanh.out", "squeeze.out"),
                                            make_layer("sflat", "flatten", "squeeze.out", "sflat.out"),
                                            make_layer("gate", "sigmoid", "sflat.out", "gate.out"), shaped, gated});
    m.find_layer("conv2")->input = "gated.out";
    m.validate();
    const std::vector<std::string> layouts = engine(m).layout_summary(4);
    CHECK(std::find(layouts.begin(), layouts.end(), "gated: blocked + blocked -> blocked") != layouts.end());
    check_layouts_agree(m, 4);
}

TEST_CASE("blocked values are converted where a step reads plain data, and only there", "[engine][cnn]") {
    SECTION("padded blocks (4 channels) before the linear head") {
        // tiny_cnn cut after its first pooling: conv1 (4 channels) bn1 relu1 pool1 fc1.
        model m = test::tiny_cnn(9, 12);
        m.layers.erase(m.layers.begin() + 4, m.layers.begin() + 7);
        m.find_layer("flatten")->input = "pool1.out";
        tensor& w = m.at("fc1.weight");
        w.shape = {10, 4 * 6 * 6};
        w.values.assign(size_t(10 * 4 * 6 * 6), 0.05f);
        m.validate();
        const std::vector<std::string> layouts = engine(m).layout_summary(5);
        CHECK(layouts[1] == "pool1: blocked -> blocked");
        CHECK(layouts[2] == "fc1: blocked converted to plain -> plain");
        check_layouts_agree(m, 5);
    }
    SECTION("a conv's output as the model's output") {
        model m = blocked_cnn(5);
        m.output = "relu2.out";
        m.layers.resize(6);
        CHECK(engine(m).layout_summary(3).back() == "output: blocked converted to plain");
        check_layouts_agree(m, 3);
    }
    SECTION("a standalone batchnorm after pooling") {
        model m = blocked_cnn(6);
        m.tensors["bn.scale"].shape = m.tensors["bn.shift"].shape = {16};
        m.tensors["bn.scale"].values.assign(16, 0.5f);
        m.tensors["bn.shift"].values.assign(16, 0.25f);
        m.layers.insert(m.layers.begin() + 7, make_layer("bn", "batchnorm", "pool2.out", "bn.out", "bn.scale", "bn.shift"));
        m.find_layer("flatten")->input = "bn.out";
        m.validate();
        CHECK(engine(m).layout_summary(2)[5] == "bn: blocked -> blocked");
        check_layouts_agree(m, 2);
    }
    SECTION("a softmax over the flattened pooling") {
        model m = blocked_cnn(7);
        m.layers.erase(m.layers.end() - 2);  // fc1
        m.find_layer("softmax")->input = "flat";
        m.validate();
        CHECK(engine(m).layout_summary(4).back() == "softmax: blocked converted to plain -> plain");
        check_layouts_agree(m, 4);
    }
}
