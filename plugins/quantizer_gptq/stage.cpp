// quantizer.gptq: GPTQ (gptq_kernel.hpp) of every linear layer from the Hessian X^T X an
// upstream calibrator.hessian stored, into RTN's quantized encoding, so the runtime, ONNX
// and GGUF export read it as they read quantizer.rtn's. 3- and 2-bit grids are stored in
// the 4-bit container (their size counts 4 bits a weight until a packed 3/2-bit encoding
// exists).
#include "gptq_kernel.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>

namespace {

gptq::options options_of(const shrink::params& p) {
    gptq::options o;
    o.bits = std::stoi(p.choice("bits"));
    o.symmetric = p.choice("scheme") == "symmetric";
    o.group_size = uint64_t(p.integer("group_size"));
    o.act_order = p.flag("act_order");
    o.damp = p.real("damp");
    o.block_size = uint64_t(p.integer("block_size"));
    return o;
}

void run(shrink::stage_context& ctx) {
    const gptq::options o = options_of(ctx.params());
    shrink::model& m = ctx.model();
    const std::vector<std::string> only = ctx.params().layers("layers");
    std::vector<shrink::layer> layers;
    std::string convs;
    for (const shrink::layer& l : m.layers()) {
        if (l.op == "linear" && (only.empty() || std::find(only.begin(), only.end(), l.name) != only.end())) layers.push_back(l);
        if (l.op == "conv") convs += (convs.empty() ? "'" : ", '") + l.name + "'";
    }
    // The stage's scope without a layers param is every layer with a weight matrix, which
    // the written model is checked against; convolutions have no Hessian of their patches.
    if (only.empty() && !convs.empty())
        throw shrink::plugin_error("quantizer.gptq quantizes linear layers only (calibrator.hessian records their inputs), and this model "
                                   "has conv layers (" + convs + "): list the linear layers to quantize in params.layers");
    int done = 0, raised = 0;
    for (const shrink::layer& l : layers) {
        if (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized; quantizer.gptq does not re-quantize");
        const uint64_t rows = l.out_features, cols = l.in_features;
        if (o.group_size && cols % o.group_size)
            throw shrink::plugin_error("layer '" + l.name + "' has " + std::to_string(cols) + " inputs, not a multiple of group_size " +
                                       std::to_string(o.group_size));
        if (!m.find_artifact(l.name, "hessian"))
            throw shrink::plugin_error("layer '" + l.name + "' has no Hessian; run calibrator.hessian before quantizer.gptq");
        const std::vector<double> h = m.read_artifact<double>(l.name, "hessian");
        const std::vector<float> w = m.read(l.weight);
        ctx.progress(("layers: " + l.name).c_str(), uint64_t(done), uint64_t(layers.size()));
        gptq::result r = gptq::quantize(w.data(), rows, cols, h, o);
        if (r.damp_raised)
            ctx.log("layer '" + l.name + "': the Hessian needed damping " + std::to_string(r.damp) + " of its mean diagonal for Cholesky");
        raised += r.damp_raised > 0;
        m.write(l.weight, shrink::quantized::of(o.bits, o.symmetric, r.group_size, std::move(r.q), std::move(r.scales), std::move(r.zero_points)));
        ++done;
    }
    ctx.progress("layers", uint64_t(done), uint64_t(layers.size()));
    ctx.result("layers_quantized", double(done));
    ctx.result("layers_damping_raised", double(raised));
    ctx.log("quantized " + std::to_string(done) + " linear layers with GPTQ to " + std::to_string(o.bits) + " bits" +
            (o.group_size ? " in groups of " + std::to_string(o.group_size) : std::string(" per channel")));
}

// A coarse prior the ledger replaces: GPTQ recovers part of what RTN's rounding costs.
double expected_drop(const shrink::params& p) {
    const gptq::options o = options_of(p);
    const double rtn = o.bits >= 8 ? 0.002 : o.bits == 4 ? (o.group_size ? 0.005 + 0.005 * double(o.group_size) / 128.0 : 0.03)
                                   : o.bits == 3 ? 0.08 : 0.3;  // quantizer.rtn's priors
    return 0.7 * rtn;
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-quantizer-gptq", "0.1.0");
    p.add({.name = "quantizer.gptq",
           .doc = "GPTQ: each linear layer's columns quantized in turn, the rounding error moved onto the columns after it through "
                  "the inverse input Hessian (from calibrator.hessian); RTN's encoding",
           .params = {shrink::param::choice("bits", "4", "8|4|3|2", "bits per weight (3 and 2 stored in the 4-bit container)"),
                      shrink::param::choice("scheme", "asymmetric", "symmetric|asymmetric", "as quantizer.rtn's"),
                      shrink::param::integer("group_size", 128, 0, 8192, "columns per scale; 0 = one scale per row"),
                      shrink::param::flag("act_order", false, "quantize columns by decreasing Hessian diagonal (static groups)"),
                      shrink::param::real("damp", "0.01", 0.0001, 1, "damping, a fraction of the Hessian's mean diagonal"),
                      shrink::param::integer("block_size", 128, 1, 8192, "columns per block of lazy updates"),
                      shrink::param::layers("layers", "quantize only these layers (default: every linear layer)")},
           .facts = {shrink::fact::requires_("hessians"), shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"), shrink::fact::invalidates("activation_ranges"),
                     shrink::fact::invalidates("hessians")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_SOLVE,
           // A layer at a time: its weight as read and as updated (float), its codes twice, a
           // superblock's errors (at most 512 columns: no more floats than the weight has);
           // H (double) and U (float).
           .memory = [](const shrink::params&, const shrink_model_outline& m) {
               return m.largest_weight * 14 + m.widest_input * m.widest_input * 12;
           }});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
