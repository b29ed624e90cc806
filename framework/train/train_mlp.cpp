#include "train/train_mlp.hpp"

#include "cpu/matmul.hpp"
#include "data/fashion_mnist.hpp"
#include "runtime/engine.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace shrink {

namespace {

struct dense_layer {
    int64_t in = 0, out = 0;
    std::vector<float> w, b, gw, gb, mw, vw, mb, vb;
};

void adam_step(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
               double lr, double correction1, double correction2) {
    constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    for (size_t i = 0; i < p.size(); ++i) {
        m[i] = float(beta1 * m[i] + (1 - beta1) * g[i]);
        v[i] = float(beta2 * v[i] + (1 - beta2) * double(g[i]) * g[i]);
        p[i] -= float(lr * (m[i] / correction1) / (std::sqrt(v[i] / correction2) + eps));
    }
}

}  // namespace

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

train_result train_mlp(const train_options& o, const std::function<void(int, double)>& on_epoch) {
    const std::string dir = o.data_dir.empty() ? fashion_mnist_default_dir : o.data_dir;
    const image_set train = load_fashion_mnist(dir, "train");
    const float input_scale = 1.0f / 255.0f;
    const int64_t n = o.train_samples > 0 ? std::min(o.train_samples, train.count) : train.count;

    // The head's inputs: pixels, or the trunk's features computed once for every sample.
    int64_t features = train.features;
    std::vector<float> trunk_features;
    if (o.trunk) {
        const engine trunk(*o.trunk);
        features = trunk.output_width();
        trunk_features.resize(size_t(n * features));
        std::vector<float> x;
        for (int64_t start = 0; start < n; start += 500) {
            const int64_t rows = std::min<int64_t>(500, n - start);
            scaled_pixels(train, start, rows, o.trunk->input_scale, x);
            const std::vector<float> y = trunk.run(x.data(), rows);
            std::copy(y.begin(), y.end(), trunk_features.begin() + start * features);
        }
    }
    std::vector<int64_t> widths{features};
    widths.insert(widths.end(), o.hidden.begin(), o.hidden.end());
    widths.push_back(train.classes);
    std::vector<dense_layer> layers(widths.size() - 1);
    rng init(derive_seed(o.seed, "init"));
    for (size_t l = 0; l < layers.size(); ++l) {
        dense_layer& d = layers[l];
        d.in = widths[l];
        d.out = widths[l + 1];
        // He-uniform for ReLU layers, Glorot-uniform for the output layer.
        const double limit = l + 1 < layers.size() ? std::sqrt(6.0 / double(d.in)) : std::sqrt(6.0 / double(d.in + d.out));
        d.w.resize(size_t(d.in * d.out));
        for (float& v : d.w) v = float((2 * init.uniform() - 1) * limit);
        d.b.assign(size_t(d.out), 0.0f);
        d.gw.resize(d.w.size());
        d.gb.resize(d.b.size());
        d.mw.assign(d.w.size(), 0.0f);
        d.vw.assign(d.w.size(), 0.0f);
        d.mb.assign(d.b.size(), 0.0f);
        d.vb.assign(d.b.size(), 0.0f);
    }

    const size_t depth = layers.size();
    std::vector<std::vector<float>> act(depth + 1), pre(depth), grad(depth);
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    int64_t step = 0;
    double epoch_loss = 0;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        rng(derive_seed(o.seed, "epoch:" + std::to_string(epoch))).shuffle(order.begin(), order.end());
        // Linear decay to 10% of the rate over the run.
        const double lr = o.learning_rate * (1.0 - 0.9 * double(epoch) / double(std::max(1, o.epochs - 1)));
        double loss_sum = 0;
        for (int64_t start = 0; start < n; start += o.batch) {
            const int64_t rows = std::min(o.batch, n - start);
            act[0].resize(size_t(rows * features));
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t sample = order[size_t(start + r)];
                if (o.trunk) {
                    std::copy_n(trunk_features.begin() + sample * features, features, act[0].begin() + r * features);
                    continue;
                }
                const uint8_t* px = train.pixels.data() + sample * train.features;
                for (int64_t f = 0; f < train.features; ++f) act[0][size_t(r * train.features + f)] = float(px[f]) * input_scale;
            }
            for (size_t l = 0; l < depth; ++l) {
                dense_layer& d = layers[l];
                pre[l].resize(size_t(rows * d.out));
                cpu::matmul(act[l].data(), false, d.w.data(), true, pre[l].data(), rows, d.out, d.in, d.b.data());
                act[l + 1] = pre[l];
                if (l + 1 < depth)
                    for (float& v : act[l + 1]) v = v > 0 ? v : 0.0f;
            }
            // Softmax cross-entropy; its gradient is (p - onehot) / rows.
            const int64_t classes = train.classes;
            std::vector<float>& g = grad[depth - 1];
            g.resize(size_t(rows * classes));
            for (int64_t r = 0; r < rows; ++r) {
                const float* z = act[depth].data() + r * classes;
                const float top = *std::max_element(z, z + classes);
                double sum = 0;
                for (int64_t c = 0; c < classes; ++c) sum += std::exp(double(z[c] - top));
                const int32_t label = train.labels[size_t(order[size_t(start + r)])];
                loss_sum += -(double(z[label] - top) - std::log(sum));
                for (int64_t c = 0; c < classes; ++c)
                    g[size_t(r * classes + c)] = float((std::exp(double(z[c] - top)) / sum - (c == label ? 1.0 : 0.0)) / double(rows));
            }
            for (size_t l = depth; l-- > 0;) {
                dense_layer& d = layers[l];
                cpu::matmul(grad[l].data(), true, act[l].data(), false, d.gw.data(), d.out, d.in, rows);
                std::fill(d.gb.begin(), d.gb.end(), 0.0f);
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t j = 0; j < d.out; ++j) d.gb[size_t(j)] += grad[l][size_t(r * d.out + j)];
                if (l == 0) continue;
                grad[l - 1].resize(size_t(rows * d.in));
                cpu::matmul(grad[l].data(), false, d.w.data(), false, grad[l - 1].data(), rows, d.in, d.out);
                for (size_t i = 0; i < grad[l - 1].size(); ++i)
                    if (pre[l - 1][i] <= 0) grad[l - 1][i] = 0.0f;
            }
            ++step;
            const double c1 = 1 - std::pow(0.9, double(step)), c2 = 1 - std::pow(0.999, double(step));
            for (dense_layer& d : layers) {
                // Decoupled weight decay keeps small weights small, so that magnitude
                // pruning later removes little that matters.
                if (o.weight_decay > 0)
                    for (float& v : d.w) v -= float(lr * o.weight_decay) * v;
                adam_step(d.w, d.gw, d.mw, d.vw, lr, c1, c2);
                adam_step(d.b, d.gb, d.mb, d.vb, lr, c1, c2);
            }
        }
        epoch_loss = loss_sum / double(n);
        if (on_epoch) on_epoch(epoch + 1, epoch_loss);
    }

    train_result result;
    model& m = result.net;
    m.input = "input";
    m.input_features = train.features;
    m.input_scale = input_scale;
    std::string prev = "input";
    size_t trunk_relus = 0;  // the head's relus are numbered after the trunk's
    if (o.trunk) {
        m = *o.trunk;
        prev = o.trunk->output;
        trunk_relus = size_t(std::count_if(m.layers.begin(), m.layers.end(), [](const layer& l) { return l.op == "relu"; }));
    }
    for (size_t l = 0; l < depth; ++l) {
        const std::string name = "fc" + std::to_string(l + 1);
        tensor w, b;
        w.shape = {layers[l].out, layers[l].in};
        w.values = layers[l].w;
        b.shape = {layers[l].out};
        b.values = layers[l].b;
        m.tensors[name + ".weight"] = std::move(w);
        m.tensors[name + ".bias"] = std::move(b);
        m.layers.push_back(make_layer(name, "linear", prev, name + ".out", name + ".weight", name + ".bias"));
        prev = name + ".out";
        const std::string act_name = l + 1 < depth ? "relu" + std::to_string(l + 1 + trunk_relus) : "softmax";
        m.layers.push_back(make_layer(act_name, l + 1 < depth ? "relu" : "softmax", prev, act_name + ".out"));
        prev = act_name + ".out";
    }
    m.output = prev;
    std::string hidden;
    for (int64_t h : o.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
    m.info = {{"made_by", "shrink train"}, {"dataset", "fashion-mnist"}, {"hidden", hidden},
              {"architecture", o.trunk ? "cnn: seeded conv blocks with measured batchnorm, trained MLP head" : "mlp"},
              {"epochs", std::to_string(o.epochs)}, {"seed", std::to_string(o.seed)},
              {"weight_decay", format_double(o.weight_decay)},
              {"preprocessing", "pixel / 255, row-major 28x28"}};
    m.validate();
    result.final_loss = epoch_loss;
    result.test_accuracy = evaluate_accuracy(m, dir, "test");
    m.info["test_accuracy"] = format_double(result.test_accuracy);
    return result;
}

}  // namespace shrink
