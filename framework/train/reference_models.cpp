#include "train/reference_models.hpp"

#include "data/fashion_mnist.hpp"
#include "cpu/engine.hpp"
#include "train/fit.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cmath>

namespace shrink {

namespace {

tensor filled(std::vector<int64_t> shape, float v) {
    tensor t;
    t.shape = std::move(shape);
    t.values.assign(t.element_count(), v);
    return t;
}

}  // namespace

void initialize_weights(model& m, uint64_t seed) {
    for (const layer& l : m.layers) {
        rng gen(derive_seed(seed, "init:" + l.name));
        if (has_matrix(l.op)) {
            tensor& w = m.at(l.weight);
            // He-normal for layers under a relu, Glorot for the last (no relu follows it).
            const bool last = &l == &*std::find_if(m.layers.rbegin(), m.layers.rend(), [](const layer& x) { return has_matrix(x.op); });
            const double fan_in = double(w.cols()), fan_out = double(w.rows());
            const double sd = last ? std::sqrt(2.0 / (fan_in + fan_out)) : std::sqrt(2.0 / fan_in);
            w = filled(w.shape, 0);
            float* values = w.values.write();
            for (size_t i = 0; i < w.values.size(); ++i) values[i] = float(gen.normal() * sd);
            if (!l.bias.empty()) m.at(l.bias) = filled(m.at(l.bias).shape, 0);
        } else if (l.kind() == op_kind::batchnorm) {
            m.at(l.weight) = filled(m.at(l.weight).shape, 1);
            m.at(l.bias) = filled(m.at(l.bias).shape, 0);
        }
    }
}

model reference_architecture(const train_options& o) {
    model m;
    m.input_features = 28 * 28;
    m.input_scale = 1.0f / 255.0f;
    std::string x = m.input;
    int64_t features = m.input_features;
    int relus = 0;
    if (o.arch == "cnn") {
        m.input_shape = {1, 28, 28};
        int64_t in_channels = 1, side = 28;
        int block = 0;
        for (int64_t channels : o.channels) {
            const std::string n = std::to_string(++block);
            m.tensors["conv" + n + ".weight"] = filled({channels, in_channels, 3, 3}, 0);
            m.tensors["conv" + n + ".bias"] = filled({channels}, 0);
            layer conv = make_layer("conv" + n, "conv", x, "conv" + n + ".out", "conv" + n + ".weight", "conv" + n + ".bias");
            conv.win.kernel = {3, 3};
            conv.win.pads = {1, 1, 1, 1};
            m.layers.push_back(conv);
            m.tensors["bn" + n + ".scale"] = filled({channels}, 1);
            m.tensors["bn" + n + ".shift"] = filled({channels}, 0);
            m.layers.push_back(make_layer("bn" + n, "batchnorm", conv.output, "bn" + n + ".out", "bn" + n + ".scale", "bn" + n + ".shift"));
            m.layers.push_back(make_layer("relu" + n, "relu", "bn" + n + ".out", "relu" + n + ".out"));
            ++relus;
            layer pool = make_layer("pool" + n, "max_pool", "relu" + n + ".out", "pool" + n + ".out");
            pool.win.kernel = pool.win.strides = {2, 2};
            m.layers.push_back(pool);
            x = pool.output;
            in_channels = channels;
            side /= 2;
        }
        m.layers.push_back(make_layer("flatten", "flatten", x, "features"));
        x = "features";
        features = in_channels * side * side;
    }
    std::vector<int64_t> widths = o.hidden;
    widths.push_back(10);
    for (size_t l = 0; l < widths.size(); ++l) {
        const std::string name = "fc" + std::to_string(l + 1);
        m.tensors[name + ".weight"] = filled({widths[l], features}, 0);
        m.tensors[name + ".bias"] = filled({widths[l]}, 0);
        m.layers.push_back(make_layer(name, "linear", x, name + ".out", name + ".weight", name + ".bias"));
        x = name + ".out";
        features = widths[l];
        const bool last = l + 1 == widths.size();
        const std::string act = last ? "softmax" : "relu" + std::to_string(++relus);
        m.layers.push_back(make_layer(act, last ? "softmax" : "relu", x, act + ".out"));
        x = act + ".out";
    }
    m.output = x;
    initialize_weights(m, o.seed);
    m.validate();
    return m;
}

double evaluate_accuracy(const model& net, const std::string& data_dir, const std::string& split) {
    const image_set set = load_fashion_mnist(data_dir.empty() ? fashion_mnist_default_dir : data_dir, split);
    const engine run(net);
    int64_t correct = 0;
    const int64_t batch = 1000;
    std::vector<float> x;
    for (int64_t start = 0; start < set.count; start += batch) {
        const int64_t rows = std::min(batch, set.count - start);
        scaled_pixels(set, start, rows, net.input_scale, x);
        const std::vector<float> out = run.run(x.data(), rows);
        const int64_t w = run.output_width();
        for (int64_t r = 0; r < rows; ++r) {
            const float* row = out.data() + r * w;
            correct += (std::max_element(row, row + w) - row) == set.labels[size_t(start + r)];
        }
    }
    return double(correct) / double(set.count);
}

train_result train_reference(const train_options& o, const std::function<void(int, double)>& on_epoch) {
    const std::string dir = o.data_dir.empty() ? fashion_mnist_default_dir : o.data_dir;
    const image_set images = load_fashion_mnist(dir, "train");
    train_result result;
    model& m = result.net;
    m = reference_architecture(o);
    train::sample_source data;
    data.count = images.count;
    data.fill = [&](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
        for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* px = images.pixels.data() + idx[r] * images.features;
            for (int64_t f = 0; f < images.features; ++f) x[r * images.features + f] = float(px[f]) * m.input_scale;
            labels[r] = images.labels[size_t(idx[r])];
        }
    };
    train::fit_options f;
    f.epochs = o.epochs;
    f.batch = o.batch;
    f.max_samples = o.train_samples;
    f.seed = o.seed;
    f.optimizer.kind = "adamw";
    f.optimizer.learning_rate = o.learning_rate;
    // Decoupled weight decay keeps small weights small, so that magnitude pruning later
    // removes little that matters.
    f.optimizer.weight_decay = o.weight_decay;
    f.optimizer.schedule = "cosine";
    f.net.batch_statistics = true;
    f.on_epoch = on_epoch;
    const train::fit_result fr = train::fit(m, data, f);
    result.final_loss = fr.epoch_loss.back();

    std::string hidden, channels;
    for (int64_t h : o.hidden) hidden.append(hidden.empty() ? "" : ",").append(std::to_string(h));
    for (int64_t c : o.channels) channels.append(channels.empty() ? "" : ",").append(std::to_string(c));
    m.info = {{"made_by", "shrink train"}, {"dataset", "fashion-mnist"}, {"hidden", hidden},
              {"architecture", o.arch == "cnn" ? "cnn: conv blocks " + channels + " (batchnorm folded), MLP head" : "mlp"},
              {"epochs", std::to_string(o.epochs)}, {"seed", std::to_string(o.seed)},
              {"optimizer", "adamw, cosine schedule"}, {"weight_decay", format_double(o.weight_decay)},
              {"preprocessing", "pixel / 255, row-major 28x28"}};
    m.validate();
    result.test_accuracy = evaluate_accuracy(m, dir, "test");
    m.info["test_accuracy"] = format_double(result.test_accuracy);
    return result;
}

}  // namespace shrink
