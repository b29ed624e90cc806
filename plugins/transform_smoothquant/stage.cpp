// transform.smoothquant: SmoothQuant's migration (smooth.hpp) for every group of linear
// layers that read the output of one RMSNorm and nothing else does (a decoder's q/k/v
// projections, its gate/up projections): each input channel divided by s_j in the norm's
// weight, each weight column multiplied by s_j, so the model computes what it computed and
// the inputs int8 quantization sees are flatter. Layers whose input comes from elsewhere
// are left as they are (the paper's code smooths the same ones). Prepares W8A8: a
// calibrator and quantizer.rtn with activation_bits 8 come after it (the planner asks for
// fresh ranges, since the weights changed).
#include "smooth.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>
#include <functional>
#include <map>

namespace {

/// The tensor's floats, written back after `f`, with their pruning mask if any.
void rewrite(shrink::model& m, const std::string& tensor, const std::function<void(std::vector<float>&)>& f) {
    std::vector<float> v = m.read(tensor);
    f(v);
    m.write_keeping_mask(tensor, v);
}

void run(shrink::stage_context& ctx) {
    const double alpha = ctx.params().real("alpha");
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = m.layers();
    if (!layers.empty() && layers.front().output.empty())
        throw shrink::plugin_error("this host does not describe the graph (shrink_host::layer_io); transform.smoothquant needs it");
    std::map<std::string, std::vector<size_t>> readers;  // value -> layers reading it
    for (size_t i = 0; i < layers.size(); ++i)
        for (const std::string& in : layers[i].inputs) readers[in].push_back(i);
    uint64_t norms = 0, smoothed = 0, linears = 0;
    double largest_before = 0, largest_after = 0;
    for (const shrink::layer& norm : layers) {
        if (norm.op == "linear") ++linears;
        if (norm.op != "rms_norm" || norm.weight.empty()) continue;
        const std::vector<size_t>& group = readers[norm.output];
        const bool all_linear = !group.empty() && std::all_of(group.begin(), group.end(), [&](size_t i) {
            return layers[i].op == "linear" && layers[i].inputs.front() == norm.output;
        });
        if (!all_linear) continue;
        std::vector<float> input_absmax, weight_absmax;
        for (size_t i : group) {
            const shrink::layer& l = layers[i];
            if (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
                throw shrink::plugin_error("layer '" + l.name + "' is quantized; SmoothQuant prepares full-precision weights for int8");
            const std::vector<float> a = m.read_artifact<float>(l.name, "channel_absmax");
            if (a.size() != l.in_features)
                throw shrink::plugin_error("layer '" + l.name + "' has no channel magnitudes; run calibrator.channels before transform.smoothquant");
            input_absmax.resize(a.size(), 0.0f);
            for (size_t j = 0; j < a.size(); ++j) input_absmax[j] = std::max(input_absmax[j], a[j]);
            const std::vector<float> w = m.read(l.weight);
            smooth::column_absmax(w.data(), l.out_features, l.in_features, weight_absmax);
        }
        const std::vector<float> s = smooth::scales(input_absmax, weight_absmax, alpha);
        rewrite(m, norm.weight, [&](std::vector<float>& g) {
            for (size_t j = 0; j < g.size(); ++j) g[j] /= s[j];
        });
        for (size_t i : group)
            rewrite(m, layers[i].weight, [&](std::vector<float>& w) {
                for (size_t k = 0; k < w.size(); ++k) w[k] *= s[k % s.size()];
            });
        for (size_t j = 0; j < s.size(); ++j) {
            largest_before = std::max(largest_before, double(input_absmax[j]));
            largest_after = std::max(largest_after, double(input_absmax[j] / s[j]));
        }
        ++norms;
        smoothed += group.size();
    }
    ctx.result("norms_folded", double(norms));
    ctx.result("layers_smoothed", double(smoothed));
    ctx.result("largest_input_before", largest_before);
    ctx.result("largest_input_after", largest_after);
    if (norms == 0) {
        ctx.log("no linear layer here reads only an RMSNorm's output: nothing to smooth, the model is unchanged");
        return;
    }
    ctx.log("smoothed " + std::to_string(smoothed) + " of " + std::to_string(linears) + " linear layers through " + std::to_string(norms) +
            " norms (alpha " + std::to_string(alpha) + "); the largest input channel went from " + std::to_string(largest_before) +
            " to " + std::to_string(largest_after));
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-transform-smoothquant", "0.1.0");
    p.add({.name = "transform.smoothquant",
           .doc = "SmoothQuant: input channel outliers moved into the weights of the linear layers after each RMSNorm (the division "
                  "folded into the norm), the model's outputs unchanged; prepares int8 activations",
           .params = {shrink::param::real("alpha", "0.5", 0, 1, "migration strength: 0 leaves the inputs, 1 moves all of their range")},
           .facts = {shrink::fact::requires_("channel_magnitudes"), shrink::fact::forbids("weights_quantized")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = [](const shrink::params&) { return 0.0; },
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
