// quantizer.rtn: round-to-nearest weight quantization of every linear layer, stored
// quantized (int8, or int4 packed two per byte by the host), with optional static 8-bit
// activation quantization from an upstream calibrator's ranges.
//
// quantizer.qat: quantization-aware training to the same encodings. During training the
// forward pass reads each weight rounded exactly as quantizer.rtn rounds it (fake
// quantization); the gradient reaches the float weight unchanged (the straight-through
// estimator). At the end the trained weights are quantized by the same RTN, so the stored
// model computes what training saw.
//
// quantizer.awq: AWQ's activation-aware scales (awq.hpp) for each group of linear layers
// whose input a scale can be folded into the layer before (an RMSNorm's weight, or the
// rows of the linear feeding a product, as up_proj feeds down_proj through SwiGLU), then
// the same RTN of every linear layer.
#include "awq.hpp"
#include "mixed_stages.hpp"
#include "rtn_kernel.hpp"
#include "stage_helpers.hpp"
#ifdef SHRINK_RTN_CUDA
#include "rtn_cuda.hpp"
#endif

#include <shrink/plugin.hpp>
#include <shrink/training.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace {

using rtn_stage::layers_to_quantize;
using rtn_stage::quantize_on_cpu;
using rtn_stage::write_quantized;

#ifdef SHRINK_RTN_CUDA
constexpr uint32_t cuda_device_bit = SHRINK_DEVICE_CUDA;
#else
constexpr uint32_t cuda_device_bit = 0;
#endif

rtn::options options_of(const shrink::params& p) {
    rtn::options o;
    o.bits = std::stoi(p.choice("bits"));
    o.symmetric = p.choice("scheme") == "symmetric";
    const std::string g = p.choice("granularity");
    o.gran = g == "per_tensor" ? rtn::granularity::per_tensor
             : g == "per_channel" ? rtn::granularity::per_channel
                                  : rtn::granularity::per_group;
    o.group_size = uint64_t(p.integer("group_size"));
    return o;
}

// A coarse prior, used only until a measurement replaces it: int8 per-channel RTN is
// near lossless on MLPs and CNNs; int4 loses more as groups grow; per-tensor is worst.
double weight_drop(const shrink::params& p) {
    const rtn::options o = options_of(p);
    double drop;
    if (o.bits == 8) {
        drop = o.gran == rtn::granularity::per_tensor ? 0.005 : 0.002;
    } else if (o.bits < 4) {
        drop = o.bits == 3 ? 0.08 : 0.3;
    } else {
        drop = o.gran == rtn::granularity::per_tensor    ? 0.08
               : o.gran == rtn::granularity::per_channel ? 0.03
                                                         : 0.005 + 0.005 * double(o.group_size) / 128.0;
        if (!o.symmetric) drop *= 0.8;
    }
    return drop;
}

/// RTN of each layer's weight, on the stage's GPU when it has one (the same codes either way).
void quantize_weights(shrink::stage_context& ctx, const std::vector<shrink::layer>& layers, const rtn::options& o) {
    shrink::model& m = ctx.model();
    for (const shrink::layer& l : layers) {
#ifdef SHRINK_RTN_CUDA
        rtn::result r = ctx.on_cuda() ? rtn::cuda::quantize(ctx.cuda(), m.read(l.weight).data(), l.out_features, l.in_features, o)
                                      : quantize_on_cpu(m, l, o);
#else
        rtn::result r = quantize_on_cpu(m, l, o);
#endif
        write_quantized(m, l, o, std::move(r));
    }
}

void run(shrink::stage_context& ctx) {
    const rtn::options o = options_of(ctx.params());
    const std::string activations = ctx.params().choice("activation_bits");
    const bool quantize_inputs = activations == "8";
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = layers_to_quantize(ctx, "quantizer.rtn");
    quantize_weights(ctx, layers, o);
    if (quantize_inputs)
        for (const shrink::layer& l : layers) {
            const std::vector<float> lo = m.read_artifact<float>(l.name, "input_min"),
                                     hi = m.read_artifact<float>(l.name, "input_max");
            if (lo.empty() || hi.empty())
                throw shrink::plugin_error("layer '" + l.name + "' has no activation range; run a calibrator first");
            const float low = std::min(lo[0], 0.0f), high = std::max(hi[0], 0.0f);
            const float scale = high > low ? (high - low) / 255.0f : 1.0f;
            m.set_input_quant(l.name, scale, int32_t(std::lrint(-low / scale)));
        }
    // Per token: no ranges, each row's scale computed when the model runs (linear layers).
    if (activations == "8_per_token")
        for (const shrink::layer& l : layers)
            if (l.op == "linear") m.set_input_quant_per_token(l.name);
    ctx.result("layers_quantized", double(layers.size()));
    ctx.log("quantized " + std::to_string(layers.size()) + " layers to int" + std::to_string(o.bits) +
            (quantize_inputs ? " with int8 inputs" : activations == "8_per_token" ? " with int8 inputs per token" : ""));
}

void run_qat(shrink::stage_context& ctx) {
    const rtn::options o = options_of(ctx.params());
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = layers_to_quantize(ctx, "quantizer.qat");
    shrink::training t = shrink::training_of(ctx.params());
    for (const shrink::layer& l : layers) t.transform_tensors.push_back(l.weight);
    t.transform = [&](const std::string&, const float* value, float* out, uint64_t rows, uint64_t cols) {
        const std::vector<float> back = rtn::dequantize(rtn::quantize(value, rows, cols, o), rows, cols);
        std::copy(back.begin(), back.end(), out);
    };
    const shrink::train_report r = m.train(t);
    shrink::report_training(ctx, r);
    quantize_weights(ctx, layers, o);
    ctx.result("layers_quantized", double(layers.size()));
    ctx.log("trained " + std::to_string(layers.size()) + " layers through int" + std::to_string(o.bits) +
            " fake quantization for " + std::to_string(r.steps) + " steps, then quantized them");
}

/// A group of linear layers reading one value, and where a division of that value's
/// channels folds: into `norm`'s weight, or into the rows (and bias) of linear `feeder`.
struct awq_group {
    std::vector<shrink::layer> members;
    std::string norm;           // an RMSNorm's weight tensor, or empty
    const shrink::layer* feeder = nullptr;
};

/// The groups AWQ can scale: the linear layers reading only an RMSNorm's output, and a
/// linear reading a product one of whose factors is a linear read by nothing else.
std::vector<awq_group> awq_groups(const std::vector<shrink::layer>& layers) {
    if (!layers.empty() && layers.front().output.empty())
        throw shrink::plugin_error("this host does not describe the graph (shrink_host::layer_io); quantizer.awq needs it");
    std::map<std::string, std::vector<size_t>> readers;
    std::map<std::string, size_t> writer;
    for (size_t i = 0; i < layers.size(); ++i) {
        writer[layers[i].output] = i;
        for (const std::string& in : layers[i].inputs) readers[in].push_back(i);
    }
    auto only_linear_readers = [&](const std::string& value) {
        const std::vector<size_t>& r = readers[value];
        return !r.empty() && std::all_of(r.begin(), r.end(), [&](size_t i) { return layers[i].op == "linear" && layers[i].inputs.front() == value; });
    };
    std::vector<awq_group> out;
    for (const shrink::layer& l : layers) {
        if (l.op == "rms_norm" && !l.weight.empty() && only_linear_readers(l.output)) {
            awq_group g;
            for (size_t i : readers[l.output]) g.members.push_back(layers[i]);
            g.norm = l.weight;
            out.push_back(std::move(g));
        }
        if (l.op != "linear") continue;
        const auto w = writer.find(l.inputs.front());
        if (w == writer.end() || layers[w->second].op != "mul" || readers[l.inputs.front()].size() != 1) continue;
        for (const std::string& factor : layers[w->second].inputs) {
            const auto f = writer.find(factor);
            if (f == writer.end() || layers[f->second].op != "linear" || readers[factor].size() != 1) continue;
            out.push_back({{l}, "", &layers[f->second]});
            break;
        }
    }
    return out;
}

/// A linear layer's input Hessian from calibrator.hessian, as floats.
std::vector<float> hessian_of(const shrink::model& m, const shrink::layer& l, const char* stage) {
    const std::vector<double> h = m.read_artifact<double>(l.name, "hessian");
    if (h.size() != l.in_features * l.in_features)
        throw shrink::plugin_error("layer '" + l.name + "' has no Hessian; run calibrator.hessian before " + std::string(stage));
    return std::vector<float>(h.begin(), h.end());
}

/// Every value of `tensor` times f(index), written back with its pruning mask if it has one
/// (pruning comes before quantizing, so AWQ may well meet one).
void rescale(shrink::model& m, const std::string& tensor, const std::function<float(uint64_t)>& f) {
    std::vector<float> v = m.read(tensor);
    for (uint64_t i = 0; i < v.size(); ++i) v[i] *= f(i);
    m.write_keeping_mask(tensor, v);
}

void run_awq(shrink::stage_context& ctx) {
    rtn::options o;
    o.bits = std::stoi(ctx.params().choice("bits"));
    o.symmetric = ctx.params().choice("scheme") == "symmetric";
    o.group_size = uint64_t(ctx.params().integer("group_size"));
    o.gran = o.group_size ? rtn::granularity::per_group : rtn::granularity::per_channel;
    const int grid = int(ctx.params().integer("grid"));
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = layers_to_quantize(ctx, "quantizer.awq");
    const std::vector<shrink::layer> all = m.layers();
    const std::vector<awq_group> groups = awq_groups(all);
    const bool clip = ctx.params().flag("clip");
    uint64_t scaled = 0, clipped = 0;
    double ratios = 0;
    std::map<std::string, std::vector<float>> scales_of;  // layer -> its input's scales
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const awq_group& g = groups[gi];
        const shrink::layer& first = g.members.front();
        ctx.progress(("groups: " + first.name).c_str(), gi, groups.size());
        const uint64_t d = first.in_features;
        const std::vector<float> hf = hessian_of(m, first, "quantizer.awq");
        const std::vector<float> mean = m.read_artifact<float>(first.name, "channel_mean_abs");
        if (mean.size() != d)
            throw shrink::plugin_error("layer '" + first.name + "' has no channel magnitudes; run calibrator.channels before quantizer.awq");
        std::vector<std::vector<float>> weights;
        std::vector<awq::member> members;
        for (const shrink::layer& l : g.members) weights.push_back(m.read(l.weight));
        for (size_t i = 0; i < weights.size(); ++i) members.push_back({weights[i].data(), g.members[i].out_features});
        const awq::search_result r = awq::search(members, d, hf, mean, o, grid);
        const std::vector<float>& s = r.scales;
        for (const shrink::layer& l : g.members) {
            rescale(m, l.weight, [&](uint64_t i) { return s[i % d]; });
            scales_of[l.name] = s;
        }
        if (!g.norm.empty()) {
            rescale(m, g.norm, [&](uint64_t j) { return 1 / s[j]; });
        } else {
            const uint64_t in = g.feeder->in_features;  // its rows are the product's channels
            rescale(m, g.feeder->weight, [&](uint64_t i) { return 1 / s[i / in]; });
            if (!g.feeder->bias.empty()) rescale(m, g.feeder->bias, [&](uint64_t j) { return 1 / s[j]; });
        }
        ++scaled;
        ratios += r.ratio;
        char line[256];
        std::snprintf(line, sizeof line, "%s%s: exponent %.2f, output error %.4g (%.4g with no scales)", first.name.c_str(),
                      g.members.size() > 1 ? " and the layers beside it" : "", r.ratio, r.errors[size_t(r.best)], r.errors[0]);
        ctx.log(line);
    }
    // Then RTN, each linear layer's groups clipped for the least output error (its Hessian
    // in the basis of its scaled input) when `clip` is on.
    std::vector<shrink::layer> plain;
    for (const shrink::layer& l : layers) {
        if (!clip || l.op != "linear" || o.gran == rtn::granularity::per_tensor) {
            plain.push_back(l);
            continue;
        }
        std::vector<float> h = hessian_of(m, l, "quantizer.awq");
        if (const auto sc = scales_of.find(l.name); sc != scales_of.end())
            for (uint64_t i = 0; i < l.in_features; ++i)
                for (uint64_t j = 0; j < l.in_features; ++j) h[i * l.in_features + j] /= sc->second[i] * sc->second[j];
        const std::vector<float> w = m.read(l.weight);
        rtn::result r = awq::quantize_clipped(w.data(), l.out_features, l.in_features, h, o, 20);
        write_quantized(m, l, o, std::move(r));
        ++clipped;
    }
    quantize_weights(ctx, plain, o);
    ctx.result("groups_scaled", double(scaled));
    ctx.result("layers_clipped", double(clipped));
    ctx.result("mean_exponent", scaled ? ratios / double(scaled) : 0.0);
    ctx.result("layers_quantized", double(layers.size()));
    ctx.log("scaled " + std::to_string(scaled) + " groups of layers by their activations, then quantized " + std::to_string(layers.size()) +
            " layers to int" + std::to_string(o.bits) + (clip ? " (" + std::to_string(clipped) + " with clipped ranges)" : ""));
}

// Quantization-aware training recovers part of what rounding costs; half is a prior the
// ledger replaces with measurements.
double expected_drop_qat(const shrink::params& p) { return 0.5 * weight_drop(p); }

double expected_drop(const shrink::params& p) {
    return weight_drop(p) + (p.choice("activation_bits") == "8" ? 0.005 : p.choice("activation_bits") == "8_per_token" ? 0.003 : 0.0);
}

std::vector<shrink::param> weight_params() {
    return {shrink::param::choice("bits", "8", "8|4|3|2", "bits per weight (3 and 2 stored in the 4-bit container)"),
            shrink::param::choice("scheme", "symmetric", "symmetric|asymmetric",
                                  "symmetric (zero point 0) or asymmetric (min/max with a zero point)"),
            shrink::param::choice("granularity", "per_channel", "per_tensor|per_channel|per_group",
                                  "one scale per tensor, per output channel, or per group of a row"),
            shrink::param::integer("group_size", 64, 8, 4096, "elements per scale with per_group")};
}

shrink::param layers_param() {
    return shrink::param::layers("layers", "quantize only these layers (default: every linear and conv layer)");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-quantizer-rtn", "0.2.0");
    std::vector<shrink::param> rtn_params = weight_params();
    rtn_params.push_back(shrink::param::choice("activation_bits", "none", "none|8|8_per_token",
                                               "8: also quantize each layer's input statically, one scale from a calibrator's ranges; "
                                               "8_per_token: dynamically, each row (token) its own scale when the model runs "
                                               "(linear layers; no calibrator)"));
    rtn_params.push_back(layers_param());
    p.add({.name = "quantizer.rtn",
           .doc = "round-to-nearest weight quantization (int8/int4), stored packed",
           .params = std::move(rtn_params),
           .facts = {shrink::fact::requires_("activation_ranges", "activation_bits=8"),
                     shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU | cuda_device_bit,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    std::vector<shrink::param> qat_params = weight_params();
    for (shrink::param& tp : shrink::training_params({.epochs = 2, .optimizer = "adamw", .learning_rate = 3e-4,
                                                      .schedule = "cosine", .weight_decay = 0, .distill_alpha = 0,
                                                      .temperature = 4}))
        qat_params.push_back(std::move(tp));
    qat_params.push_back(layers_param());
    p.add({.name = "quantizer.qat",
           .doc = "quantization-aware training (fake quantization, straight-through gradients), then RTN's encodings",
           .params = std::move(qat_params),
           .facts = {shrink::fact::requires_("training_data"),
                     shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop_qat,
           .run = run_qat,
           .resources = SHRINK_RESOURCE_TRAINING_STATE | SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_TRAINING});
    p.add({.name = "quantizer.awq",
           .doc = "AWQ: per-input-channel scales from activation magnitudes, the exponent searched for the least output error "
                  "(from the Hessian), folded into the norm or linear before; then RTN in groups",
           .params = {shrink::param::choice("bits", "4", "8|4|3|2", "bits per weight (3 and 2 stored in the 4-bit container)"),
                      shrink::param::choice("scheme", "asymmetric", "symmetric|asymmetric", "as quantizer.rtn's"),
                      shrink::param::integer("group_size", 128, 0, 4096, "elements per scale; 0 = one per output channel"),
                      shrink::param::integer("grid", 20, 1, 1000, "exponents tried: i / grid for i = 0..grid-1"),
                      shrink::param::flag("clip", true, "clip each group's range for the least output error (AWQ's auto-clip)"),
                      layers_param()},
           .facts = {shrink::fact::requires_("hessians"), shrink::fact::requires_("channel_magnitudes"),
                     shrink::fact::forbids("weights_quantized"), shrink::fact::provides("weights_quantized"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = [](const shrink::params& p) {
               rtn::options o;
               o.bits = std::stoi(p.choice("bits"));
               return 0.7 * (o.bits >= 8 ? 0.002 : o.bits == 4 ? 0.01 : o.bits == 3 ? 0.08 : 0.3);  // most of RTN's, as GPTQ's prior
           },
           .run = run_awq,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_SOLVE});
    p.add(mixed::sensitivity_stage());
    p.add(mixed::mixed_stage());
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
