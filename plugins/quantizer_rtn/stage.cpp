// quantizer.rtn: round-to-nearest weight quantization of every linear layer, stored
// quantized (int8, or int4 packed two per byte by the host), with optional static 8-bit
// activation quantization from an upstream calibrator's ranges.
//
// quantizer.qat: quantization-aware training to the same encodings. During training the
// forward pass reads each weight rounded exactly as quantizer.rtn rounds it (fake
// quantization); the gradient reaches the float weight unchanged (the straight-through
// estimator). At the end the trained weights are quantized by the same RTN, so the stored
// model computes what training saw.
#include "rtn_kernel.hpp"
#ifdef SHRINK_RTN_CUDA
#include "rtn_cuda.hpp"
#endif

#include <shrink/plugin.hpp>
#include <shrink/training.hpp>

#include <algorithm>
#include <cmath>

namespace {

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

/// The layers a stage quantizes: its scope, refusing quantized ones.
std::vector<shrink::layer> layers_to_quantize(shrink::stage_context& ctx, const char* stage) {
    std::vector<shrink::layer> out;
    const std::vector<std::string> only = ctx.params().layers("layers");
    for (const shrink::layer& l : ctx.model().layers()) {
        if (!l.has_matrix() || (!only.empty() && std::find(only.begin(), only.end(), l.name) == only.end())) continue;
        const shrink_tensor_info info = ctx.model().info(l.weight);
        if (info.encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized to " + std::to_string(info.bits) +
                                       " bits; " + stage + " does not re-quantize");
        out.push_back(l);
    }
    return out;
}

/// Floats of a weight read at a time on the CPU: per-channel and per-group scales depend on
/// their row alone, so a weight far larger than this is quantized a block of rows at a time
/// (the same codes as all at once) and never held whole as floats.
constexpr uint64_t block_floats = uint64_t(1) << 20;

rtn::result quantize_on_cpu(const shrink::model& m, const shrink::layer& l, const rtn::options& o) {
    const uint64_t rows = l.out_features, cols = l.in_features;
    const uint64_t block_rows = std::max<uint64_t>(1, block_floats / std::max<uint64_t>(cols, 1));
    if (o.gran == rtn::granularity::per_tensor || block_rows >= rows) {  // one scale for all: the whole tensor
        const std::vector<float> w = m.read(l.weight);
        return rtn::quantize(w.data(), rows, cols, o);
    }
    rtn::result all;
    all.q.reserve(rows * cols);
    for (uint64_t first = 0; first < rows; first += block_rows) {
        const uint64_t count = std::min(block_rows, rows - first);
        const std::vector<float> w = m.read_rows(l.weight, first, count);
        rtn::result r = rtn::quantize(w.data(), count, cols, o);
        all.group_size = r.group_size;
        all.q.insert(all.q.end(), r.q.begin(), r.q.end());
        all.scales.insert(all.scales.end(), r.scales.begin(), r.scales.end());
        all.zero_points.insert(all.zero_points.end(), r.zero_points.begin(), r.zero_points.end());
    }
    return all;
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
        shrink::quantized q;
        q.bits = o.bits <= 4 ? 4 : 8;  // 3- and 2-bit grids in the 4-bit container (no packed 3/2-bit encoding yet)
        q.symmetric = o.symmetric;
        q.group_size = r.group_size;
        q.values = std::move(r.q);
        q.scales = std::move(r.scales);
        q.zero_points = std::move(r.zero_points);
        m.write(l.weight, q);
    }
}

void run(shrink::stage_context& ctx) {
    const rtn::options o = options_of(ctx.params());
    const bool quantize_inputs = ctx.params().choice("activation_bits") == "8";
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
    ctx.result("layers_quantized", double(layers.size()));
    ctx.log("quantized " + std::to_string(layers.size()) + " layers to int" + std::to_string(o.bits) +
            (quantize_inputs ? " with int8 inputs" : ""));
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

// Quantization-aware training recovers part of what rounding costs; half is a prior the
// ledger replaces with measurements.
double expected_drop_qat(const shrink::params& p) { return 0.5 * weight_drop(p); }

double expected_drop(const shrink::params& p) {
    return weight_drop(p) + (p.choice("activation_bits") == "8" ? 0.005 : 0.0);
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
    rtn_params.push_back(shrink::param::choice("activation_bits", "none", "none|8",
                                               "8: also quantize each layer's input statically (needs a calibrator)"));
    rtn_params.push_back(layers_param());
    p.add({.name = "quantizer.rtn",
           .doc = "round-to-nearest weight quantization (int8/int4), stored packed",
           .params = std::move(rtn_params),
           .facts = {shrink::fact::requires_("activation_ranges", "activation_bits"),
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
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
