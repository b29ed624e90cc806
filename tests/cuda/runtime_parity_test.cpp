// The CUDA runtime against the CPU engine on the same inputs: every op of the MLP and CNN
// reference models and of the joins, with quantized, sparse and factorized weights. The
// tolerance is float rounding of differently ordered sums: |gpu - cpu| <= 1e-4 * (1 +
// the largest |cpu| output). On the reference models and the real test set, the argmax
// may flip only where the top two logits are that close.
#include "data/fashion_mnist.hpp"
#include "cuda/cuda.hpp"
#include "model/safetensors.hpp"
#include "onnx/import.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

using namespace shrink;

namespace {

std::vector<float> random_inputs(const model& m, int64_t rows, uint64_t seed) {
    rng g(seed);
    std::vector<float> x(size_t(rows * m.input_features));
    for (float& v : x) v = float(g.uniform());
    return x;
}

void check_outputs(const std::vector<float>& cpu, const std::vector<float>& gpu) {
    REQUIRE(cpu.size() == gpu.size());
    float largest = 0;
    for (float v : cpu) largest = std::max(largest, std::fabs(v));
    for (size_t i = 0; i < cpu.size(); ++i) REQUIRE(std::fabs(gpu[i] - cpu[i]) <= 1e-4f * (1 + largest));
}

void check_parity(const model& m, std::initializer_list<int64_t> batches = {1, 7, 256}) {
    const engine cpu(m);
    const std::unique_ptr<runner> gpu = make_cuda_runner(m, 0);
    CHECK(gpu->output_width() == cpu.output_width());
    for (int64_t rows : batches) {
        INFO("rows " << rows);
        const std::vector<float> x = random_inputs(m, rows, uint64_t(rows));
        check_outputs(cpu.run(x.data(), rows), gpu->run(x.data(), rows));
    }
}

/// tiny_cnn (conv, batchnorm, relu, max_pool, grouped conv, leaky_relu, avg_pool, flatten,
/// linear, softmax) grown with a residual add, a broadcast gate (global_avg_pool, sigmoid,
/// reshape, mul), a concat and a log_softmax head.
model joined_cnn() {
    model m = test::tiny_cnn(11, 12);
    layer skip = make_layer("skip", "add", "relu1.out", "skip.out");
    skip.more_inputs = {"relu1.out"};
    layer squeeze = make_layer("squeeze", "global_avg_pool", "skip.out", "squeeze.out");
    layer gate = make_layer("gate", "sigmoid", "squeeze.out", "gate.out");
    layer gated = make_layer("gated", "mul", "skip.out", "gated.out");
    gated.more_inputs = {"gate.out"};
    layer both = make_layer("both", "concat", "gated.out", "both.out");
    both.more_inputs = {"skip.out"};
    both.axis = 0;
    const long at = long(m.find_layer("pool1") - m.layers.data());
    m.layers.insert(m.layers.begin() + at, {skip, squeeze, gate, gated, both});
    m.find_layer("pool1")->input = "both.out";
    // pool1 now sees twice the channels: double conv2's input channels.
    tensor& w = m.at(m.find_layer("conv2")->weight);
    rng g(3);
    w.shape[1] *= 2;
    std::vector<float> values;
    for (uint64_t i = 0; i < w.element_count(); ++i) values.push_back(float(g.normal() * 0.2));
    w.values = std::move(values);
    layer& head = m.layers.back();
    head.op = "log_softmax";
    m.validate();
    return m;
}

}  // namespace

TEST_CASE("the CUDA runtime matches the CPU engine on MLPs with every weight encoding", "[cuda][runtime]") {
    model m = test::tiny_model(6, 40);
    check_parity(m);
    tensor& w1 = m.at("fc1.weight");  // int4 per group of 8, asymmetric
    const quant_spec spec{4, false, 8};
    const uint64_t scales = tensor::scale_count(w1.shape, spec);
    std::vector<int8_t> q(w1.element_count());
    for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int(i % 16) - 8);
    std::vector<float> s(scales);
    for (size_t i = 0; i < s.size(); ++i) s[i] = 0.01f + 0.001f * float(i % 5);
    w1 = make_quantized(w1, spec, q, s, std::vector<int8_t>(scales, 1));
    tensor& w2 = m.at("fc2.weight");  // sparse, then int8 per channel on top
    w2.mask.assign(w2.element_count(), 1);
    for (size_t i = 0; i < w2.mask.size(); i += 3) w2.mask.write()[i] = 0, w2.values.write()[i] = 0;
    check_parity(m);
    std::vector<int8_t> q2(w2.element_count());
    for (size_t i = 0; i < q2.size(); ++i) q2[i] = w2.mask[i] ? int8_t(int(i % 200) - 100) : 0;
    w2 = make_quantized(w2, {8, true, w2.shape[1] > 0 ? uint64_t(w2.shape[1]) : 0}, q2, std::vector<float>(size_t(w2.shape[0]), 0.002f), {});
    m.layers[0].input_quantization = input_quant{0.02f, 3};
    check_parity(m);
    // Table encodings (decoded on the host): NF4 with double-quantized scales, k-means per row.
    tensor& w3 = m.at("fc3.weight");
    quant_spec km(4, true, 0);
    km.table = "kmeans";
    km.books = w3.rows();
    std::vector<float> table(w3.rows() * 16);
    for (size_t i = 0; i < table.size(); ++i) table[i] = -0.1f + 0.013f * float(i % 16) + 0.001f * float(i / 16);
    std::vector<int8_t> q3(w3.element_count());
    for (size_t i = 0; i < q3.size(); ++i) q3[i] = int8_t(int(i * 7 % 16) - 8);
    w3 = make_table_quantized(w3, km, q3, {}, table);
    quant_spec nf4(4, true, 8);
    nf4.table = "nf4";
    nf4.double_quant = true;
    w1 = make_table_quantized(w1, nf4, q, s, {});
    check_parity(m);
    // Per-token dynamic int8 inputs: each row's scale from its own absmax, on the device.
    m.layers[0].input_quantization = input_quant{1, 0, true};
    m.find_layer("fc2")->input_quantization = input_quant{1, 0, true};
    check_parity(m);
}

TEST_CASE("the CUDA runtime matches the CPU engine on every activation", "[cuda][runtime]") {
    for (const char* op : {"leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "clip"}) {
        INFO(op);
        model m = test::tiny_model(9, 24);
        for (const char* name : {"relu1", "relu2"}) {
            layer& l = *m.find_layer(name);
            l.op = op;
            l.alpha = std::string(op) == "clip" ? -0.05f : 0.1f;
            l.beta = 0.05f;
        }
        check_parity(m, {1, 7});
    }
}

TEST_CASE("the CUDA runtime matches the CPU engine on CNNs, joins and grouped convs", "[cuda][runtime]") {
    check_parity(test::tiny_cnn(3, 12));
    check_parity(joined_cnn());
    // Padded 3x3 windows at stride 1 (shapes kept): average counting the padding, then max.
    model m = test::tiny_cnn(4, 8);
    m.find_layer("conv1")->input_quantization = input_quant{0.01f, 0};
    layer smooth = make_layer("smooth", "avg_pool", "pool2.out", "smooth.out");
    layer peak = make_layer("peak", "max_pool", "smooth.out", "peak.out");
    for (layer* l : {&smooth, &peak}) {
        l->win.kernel = {3, 3};
        l->win.pads = {1, 1, 1, 1};
    }
    smooth.win.count_include_pad = true;
    const long at = long(m.find_layer("flatten") - m.layers.data());
    m.layers.insert(m.layers.begin() + at, {smooth, peak});
    m.find_layer("flatten")->input = "peak.out";
    m.validate();
    check_parity(m, {1, 5});
}

TEST_CASE("the CUDA runtime hands layer inputs to an observer as the CPU does", "[cuda][runtime]") {
    const model m = test::tiny_cnn(5, 8);
    const engine cpu(m);
    const std::unique_ptr<runner> gpu = make_cuda_runner(m, 0);
    const std::vector<float> x = random_inputs(m, 3, 9);
    std::vector<std::pair<std::string, std::vector<float>>> a, b;
    cpu.run(x.data(), 3, [&](const std::string& l, const float* d, int64_t r, int64_t c) { a.emplace_back(l, std::vector<float>(d, d + r * c)); });
    gpu->run(x.data(), 3, [&](const std::string& l, const float* d, int64_t r, int64_t c) { b.emplace_back(l, std::vector<float>(d, d + r * c)); });
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].first == b[i].first);
        check_outputs(a[i].second, b[i].second);
    }
}

TEST_CASE("the reference MLP and CNN classify the test set the same on the GPU", "[cuda][runtime][model]") {
    const image_set test = load_fashion_mnist("/usr/share/datasets/fashion-mnist", "test");
    for (const char* file : {SHRINK_REFERENCE_MODEL, SHRINK_REFERENCE_CNN}) {
        INFO(file);
        if (!std::filesystem::exists(file)) {
            WARN("no reference model at " << file << "; make it with shrink train");
            continue;
        }
        const model m = load_any_model(file);
        const engine cpu(m);
        const std::unique_ptr<runner> gpu = make_cuda_runner(m, 0);
        std::vector<float> x;
        int64_t cpu_right = 0, gpu_right = 0, flips = 0;
        const int64_t total = int64_t(test.labels.size());
        for (int64_t start = 0; start < total; start += 256) {
            const int64_t rows = std::min<int64_t>(256, total - start);
            scaled_pixels(test, start, rows, m.input_scale, x);
            const std::vector<float> a = cpu.run(x.data(), rows), b = gpu->run(x.data(), rows);
            check_outputs(a, b);
            const int64_t w = cpu.output_width();
            for (int64_t r = 0; r < rows; ++r) {
                const auto ia = std::max_element(a.begin() + r * w, a.begin() + (r + 1) * w) - (a.begin() + r * w);
                const auto ib = std::max_element(b.begin() + r * w, b.begin() + (r + 1) * w) - (b.begin() + r * w);
                cpu_right += ia == test.labels[size_t(start + r)];
                gpu_right += ib == test.labels[size_t(start + r)];
                flips += ia != ib;
            }
        }
        CHECK(flips <= 2);
        CHECK(std::abs(cpu_right - gpu_right) <= 2);
    }
}

namespace {

/// Windows of token ids as the model's input: [id, position] a row, positions from 0 in
/// each window.
std::vector<float> windows_input(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed) {
    rng g(seed);
    std::vector<float> tokens;
    for (int64_t n : lengths)
        for (int64_t t = 0; t < n; ++t) tokens.insert(tokens.end(), {float(g.below(uint64_t(vocab))), float(t)});
    return tokens;
}

void check_decoder_parity(const model& m) {
    const engine cpu(m);
    const std::unique_ptr<runner> gpu = make_cuda_runner(m, 0);
    CHECK(gpu->output_width() == cpu.output_width());
    const int64_t vocab = m.at("model.embed_tokens.weight").shape[0];
    // One token; windows of uneven lengths in one batch; a long window (scores past one
    // block of threads).
    for (const std::vector<int64_t>& lengths : {std::vector<int64_t>{1}, {5, 17, 3}, {300}}) {
        INFO("windows of " << lengths.size());
        const std::vector<float> x = windows_input(lengths, vocab, uint64_t(lengths.size()));
        const int64_t rows = int64_t(x.size() / 2);
        check_outputs(cpu.run(x.data(), rows), gpu->run(x.data(), rows));
    }
}

}  // namespace

TEST_CASE("the CUDA runtime matches the CPU engine on decoders: embedding, RMSNorm, rotary grouped-query attention, SwiGLU",
          "[cuda][runtime][decoder]") {
    decoder_shape s = test::tiny_decoder_shape();
    check_decoder_parity(test::random_decoder(s, 3));
    s.tied = true, s.qkv_bias = true, s.kv_heads = 1, s.rope_theta = 1e6;  // Qwen 2's choices, one key/value head
    model m = test::random_decoder(s, 4);
    check_decoder_parity(m);
    // Quantized and sparse projections decode on the device as in the MLPs.
    tensor& q = m.at("model.layers.0.self_attn.q_proj.weight");
    const quant_spec spec{4, false, 8};
    const uint64_t scales = tensor::scale_count(q.shape, spec);
    std::vector<int8_t> codes(q.element_count());
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = int8_t(int(i % 16) - 8);
    q = make_quantized(q, spec, codes, std::vector<float>(scales, 0.02f), std::vector<int8_t>(scales, 1));
    tensor& up = m.at("model.layers.1.mlp.up_proj.weight");
    up.mask.assign(up.element_count(), 1);
    for (size_t i = 0; i < up.mask.size(); i += 2) up.mask.write()[i] = 0, up.values.write()[i] = 0;
    check_decoder_parity(m);
}

TEST_CASE("the CUDA runtime refuses a decoder's bad token input as the CPU does", "[cuda][runtime][decoder]") {
    const model m = test::random_decoder(test::tiny_decoder_shape(), 5);
    const std::unique_ptr<runner> gpu = make_cuda_runner(m, 0);
    const std::vector<float> bad_id{0, 0, 37, 1}, bad_position{1, 0, 2, 2};
    CHECK_THROWS_WITH(gpu->run(bad_id.data(), 2), Catch::Contains("token id 37") && Catch::Contains("is not in the vocabulary of 37"));
    CHECK_THROWS_WITH(gpu->run(bad_position.data(), 2), Catch::Contains("token positions must count up from 0 in each window: row 1"));
}
