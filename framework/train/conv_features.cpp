#include "train/conv_features.hpp"

#include "runtime/engine.hpp"
#include "util/random.hpp"

#include <cmath>

namespace shrink {

namespace {

/// Sets batchnorm `bn` (already in m, reading the last conv's output) so that each
/// channel of that output has mean 0 and variance 1 over the first `samples` images.
void measure_batchnorm(model& m, const layer& conv, const std::string& bn_name, const image_set& train, int64_t samples,
                       float input_scale) {
    model upto = m;
    upto.layers.resize(size_t(std::find_if(m.layers.begin(), m.layers.end(), [&](const layer& l) { return l.name == conv.name; }) -
                              m.layers.begin()) + 1);
    upto.output = conv.output;
    const engine run(upto);
    const auto shape = upto.activation_shapes().at(conv.output);
    const int64_t channels = shape[0], inner = shape[1] * shape[2];
    std::vector<double> sum(size_t(channels), 0.0), square(size_t(channels), 0.0);
    const int64_t batch = 500;
    std::vector<float> x;
    for (int64_t start = 0; start < samples; start += batch) {
        const int64_t rows = std::min(batch, samples - start);
        scaled_pixels(train, start, rows, input_scale, x);
        const std::vector<float> y = run.run(x.data(), rows);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < channels; ++c) {
                const float* v = y.data() + (r * channels + c) * inner;
                for (int64_t i = 0; i < inner; ++i) {
                    sum[size_t(c)] += v[i];
                    square[size_t(c)] += double(v[i]) * v[i];
                }
            }
    }
    tensor& scale = m.at(bn_name + ".scale");
    tensor& shift = m.at(bn_name + ".shift");
    const double count = double(samples * inner);
    for (size_t c = 0; c < size_t(channels); ++c) {
        const double mean = sum[c] / count, var = std::max(0.0, square[c] / count - mean * mean);
        const double s = 1.0 / std::sqrt(var + 1e-5);
        scale.values[c] = float(s);
        shift.values[c] = float(-mean * s);
    }
}

}  // namespace

model random_conv_trunk(const image_set& train, const conv_trunk_options& o) {
    model m;
    m.input_shape = {1, 28, 28};
    m.input_features = 28 * 28;
    m.input_scale = o.input_scale;
    rng gen(derive_seed(o.seed, "conv-trunk"));
    std::string x = m.input;
    int64_t in_channels = 1;
    const int64_t samples = std::min(o.stats_samples, train.count);
    int block = 0;
    for (int64_t channels : {o.channels1, o.channels2}) {
        const std::string n = std::to_string(++block);
        tensor w;
        w.shape = {channels, in_channels, 3, 3};
        const double sd = std::sqrt(2.0 / double(in_channels * 9));
        for (uint64_t i = 0; i < w.element_count(); ++i) w.values.push_back(float(gen.normal() * sd));
        m.tensors["conv" + n + ".weight"] = w;
        layer conv = make_layer("conv" + n, "conv", x, "conv" + n + ".out", "conv" + n + ".weight");
        conv.win.kernel = {3, 3};
        conv.win.pads = {1, 1, 1, 1};
        m.layers.push_back(conv);
        m.tensors["bn" + n + ".scale"] = tensor{{channels}, std::vector<float>(size_t(channels), 1.0f), {}, {}, {}, {}, {}};
        m.tensors["bn" + n + ".shift"] = tensor{{channels}, std::vector<float>(size_t(channels), 0.0f), {}, {}, {}, {}, {}};
        m.layers.push_back(make_layer("bn" + n, "batchnorm", conv.output, "bn" + n + ".out", "bn" + n + ".scale", "bn" + n + ".shift"));
        m.layers.push_back(make_layer("relu" + n, "relu", "bn" + n + ".out", "relu" + n + ".out"));
        layer pool = make_layer("pool" + n, "max_pool", "relu" + n + ".out", "pool" + n + ".out");
        pool.win.kernel = pool.win.strides = {2, 2};
        m.layers.push_back(pool);
        m.output = pool.output;
        measure_batchnorm(m, conv, "bn" + n, train, samples, o.input_scale);
        x = pool.output;
        in_channels = channels;
    }
    m.layers.push_back(make_layer("flatten", "flatten", x, "features"));
    m.output = "features";
    m.validate();
    return m;
}

}  // namespace shrink
