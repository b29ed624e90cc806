// quantizer.rtn: round-to-nearest weight quantization of every linear layer, stored
// quantized (int8, or int4 packed two per byte by the host), with optional static 8-bit
// activation quantization from an upstream calibrator's ranges.
#include "rtn_kernel.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>
#include <cmath>

namespace {

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
double expected_drop(const shrink::params& p) {
    const rtn::options o = options_of(p);
    double drop;
    if (o.bits == 8) {
        drop = o.gran == rtn::granularity::per_tensor ? 0.005 : 0.002;
    } else {
        drop = o.gran == rtn::granularity::per_tensor    ? 0.08
               : o.gran == rtn::granularity::per_channel ? 0.03
                                                         : 0.005 + 0.005 * double(o.group_size) / 128.0;
        if (!o.symmetric) drop *= 0.8;
    }
    if (p.choice("activation_bits") == "8") drop += 0.005;
    return drop;
}

void run(shrink::stage_context& ctx) {
    const rtn::options o = options_of(ctx.params());
    const bool quantize_inputs = ctx.params().choice("activation_bits") == "8";
    shrink::model& m = ctx.model();
    const std::vector<std::string> only = ctx.params().layers("layers");
    uint64_t quantized = 0;
    for (const shrink::layer& l : m.layers()) {
        if (!l.has_matrix() || (!only.empty() && std::find(only.begin(), only.end(), l.name) == only.end())) continue;
        const shrink_tensor_info info = m.info(l.weight);
        if (info.encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized to " + std::to_string(info.bits) +
                                       " bits; quantizer.rtn does not re-quantize");
        const std::vector<float> w = m.read(l.weight);
        rtn::result r = rtn::quantize(w.data(), l.out_features, l.in_features, o);
        shrink::quantized q;
        q.bits = o.bits;
        q.symmetric = o.symmetric;
        q.group_size = r.group_size;
        q.values = std::move(r.q);
        q.scales = std::move(r.scales);
        q.zero_points = std::move(r.zero_points);
        m.write(l.weight, q);
        if (quantize_inputs) {
            const std::vector<float> lo = m.get_stat(l.name, "input_min"), hi = m.get_stat(l.name, "input_max");
            if (lo.empty() || hi.empty())
                throw shrink::plugin_error("layer '" + l.name + "' has no activation range; run a calibrator first");
            const float low = std::min(lo[0], 0.0f), high = std::max(hi[0], 0.0f);
            const float scale = high > low ? (high - low) / 255.0f : 1.0f;
            m.set_input_quant(l.name, scale, int32_t(std::lrint(-low / scale)));
        }
        ++quantized;
    }
    ctx.result("layers_quantized", double(quantized));
    ctx.log("quantized " + std::to_string(quantized) + " layers to int" + std::to_string(o.bits) +
            (quantize_inputs ? " with int8 inputs" : ""));
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-quantizer-rtn", "0.1.0");
    p.add({.name = "quantizer.rtn",
           .doc = "round-to-nearest weight quantization (int8/int4), stored packed",
           .params = {shrink::param::choice("bits", "8", "8|4", "bits per weight"),
                      shrink::param::choice("scheme", "symmetric", "symmetric|asymmetric",
                                            "symmetric (zero point 0) or asymmetric (min/max with a zero point)"),
                      shrink::param::choice("granularity", "per_channel", "per_tensor|per_channel|per_group",
                                            "one scale per tensor, per output channel, or per group of a row"),
                      shrink::param::integer("group_size", 64, 8, 4096, "elements per scale with per_group"),
                      shrink::param::choice("activation_bits", "none", "none|8",
                                            "8: also quantize each layer's input statically (needs a calibrator)"),
                      shrink::param::layers("layers", "quantize only these layers (default: every linear and conv layer)")},
           .facts = {shrink::fact::requires_("activation_ranges", "activation_bits"),
                     shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
