// quantizer.gptq: GPTQ (gptq_kernel.hpp) of every linear layer from the Hessian X^T X an
// upstream calibrator.hessian stored, into RTN's quantized encoding, so the runtime, ONNX
// and GGUF export read it as they read quantizer.rtn's. 3- and 2-bit grids are stored in
// the 4-bit container (their size counts 4 bits a weight until a packed 3/2-bit encoding
// exists).
//
// quantizer.gptq_sequential: the same, as the paper's reference runs it: the calibration
// samples go through the model one decoder block at a time (the host's forward_blocks),
// each block's Hessians are summed from inputs computed through the blocks before it as
// already quantized, and the block is quantized before the next one sees the samples.
#include "gptq_kernel.hpp"
#include "hessian_kernel.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>
#include <map>

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

/// The linear layers in the stage's scope, checked before any is quantized.
std::vector<shrink::layer> scope(shrink::stage_context& ctx, const gptq::options& o, const char* stage) {
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
        throw shrink::plugin_error(std::string(stage) + " quantizes linear layers only (their inputs give the Hessians), and this model " +
                                   "has conv layers (" + convs + "): list the linear layers to quantize in params.layers");
    for (const shrink::layer& l : layers) {
        if (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized; " + stage + " does not re-quantize");
        if (o.group_size && l.in_features % o.group_size)
            throw shrink::plugin_error("layer '" + l.name + "' has " + std::to_string(l.in_features) +
                                       " inputs, not a multiple of group_size " + std::to_string(o.group_size));
    }
    return layers;
}

/// Quantizes one layer from its Hessian and writes it; returns whether damping was raised.
bool quantize_layer(shrink::stage_context& ctx, const shrink::layer& l, const std::vector<double>& h, const gptq::options& o) {
    const std::vector<float> w = ctx.model().read(l.weight);
    gptq::result r = gptq::quantize(w.data(), l.out_features, l.in_features, h, o);
    if (r.damp_raised)
        ctx.log("layer '" + l.name + "': the Hessian needed damping " + std::to_string(r.damp) + " of its mean diagonal for Cholesky");
    ctx.model().write(l.weight, shrink::quantized::of(o.bits, o.symmetric, r.group_size, std::move(r.q), std::move(r.scales),
                                                      std::move(r.zero_points)));
    return r.damp_raised > 0;
}

void report(shrink::stage_context& ctx, const gptq::options& o, int done, int raised) {
    ctx.result("layers_quantized", double(done));
    ctx.result("layers_damping_raised", double(raised));
    ctx.log("quantized " + std::to_string(done) + " linear layers with GPTQ to " + std::to_string(o.bits) + " bits" +
            (o.group_size ? " in groups of " + std::to_string(o.group_size) : std::string(" per channel")));
}

void run(shrink::stage_context& ctx) {
    const gptq::options o = options_of(ctx.params());
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = scope(ctx, o, "quantizer.gptq");
    for (const shrink::layer& l : layers)
        if (!m.find_artifact(l.name, "hessian"))
            throw shrink::plugin_error("layer '" + l.name + "' has no Hessian; run calibrator.hessian before quantizer.gptq");
    int done = 0, raised = 0;
    for (const shrink::layer& l : layers) {
        ctx.progress(("layers: " + l.name).c_str(), uint64_t(done), uint64_t(layers.size()));
        raised += quantize_layer(ctx, l, m.read_artifact<double>(l.name, "hessian"), o);
        ++done;
    }
    ctx.progress("layers", uint64_t(done), uint64_t(layers.size()));
    report(ctx, o, done, raised);
}

void run_sequential(shrink::stage_context& ctx) {
    const gptq::options o = options_of(ctx.params());
    shrink::model& m = ctx.model();
    const std::vector<shrink::layer> layers = scope(ctx, o, "quantizer.gptq_sequential");
    std::map<std::string, const shrink::layer*> wanted;
    for (const shrink::layer& l : layers) wanted[l.name] = &l;
    // Layers reading the same value (q, k and v; gate and up) share one Hessian: it is
    // summed once, under the first of them the block runs.
    std::map<std::string, std::string> input_of;
    for (const shrink::layer& l : m.layers()) input_of[l.name] = l.inputs.empty() ? l.name : l.inputs[0];
    std::map<std::string, std::vector<double>> sums;      // by input value, this block's
    std::map<std::string, std::string> sum_of;           // layer -> input value whose sum it uses
    std::vector<std::string> seen;                         // the block's layers in scope, in order
    std::map<std::string, uint64_t> cols_of;
    int done = 0, raised = 0, blocks = 0;
    m.forward_blocks(SHRINK_SPLIT_CALIBRATION, uint64_t(ctx.params().integer("samples")), [&](const shrink_forward_event& e) {
        if (e.kind == SHRINK_FORWARD_LAYER_INPUT) {
            if (!wanted.count(e.layer)) return;
            const std::string& value = input_of[e.layer];
            if (!sum_of.count(e.layer)) {
                sum_of[e.layer] = value;
                seen.push_back(e.layer);
            }
            // The first layer reading a value sums each batch; the others share its sum.
            if (const auto first = std::find_if(seen.begin(), seen.end(), [&](const std::string& n) { return sum_of[n] == value; });
                *first != e.layer)
                return;
            std::vector<double>& h = sums[value];
            h.resize(e.cols * e.cols);
            cols_of[value] = e.cols;
            hessian::accumulate_lower(h, e.data, e.rows, e.cols);
            return;
        }
        if (e.kind != SHRINK_FORWARD_BLOCK_END) return;
        ++blocks;
        for (auto& [value, h] : sums) hessian::mirror(h, cols_of[value]);
        for (const std::string& name : seen) {
            raised += quantize_layer(ctx, *wanted[name], sums[sum_of[name]], o);
            ++done;
        }
        if (!seen.empty()) ctx.log(std::string("block '") + e.layer + "': quantized " + std::to_string(seen.size()) + " layers", SHRINK_LOG_DEBUG);
        sums.clear();
        sum_of.clear();
        seen.clear();
    });
    if (done != int(layers.size()))
        throw shrink::plugin_error("the calibration pass reached " + std::to_string(done) + " of the " + std::to_string(layers.size()) +
                                   " layers to quantize");
    ctx.result("blocks", double(blocks));
    report(ctx, o, done, raised);
}

// A coarse prior the ledger replaces: GPTQ recovers part of what RTN's rounding costs.
double expected_drop(const shrink::params& p) {
    const gptq::options o = options_of(p);
    const double rtn = o.bits >= 8 ? 0.002 : o.bits == 4 ? (o.group_size ? 0.005 + 0.005 * double(o.group_size) / 128.0 : 0.03)
                                   : o.bits == 3 ? 0.08 : 0.3;  // quantizer.rtn's priors
    return 0.7 * rtn;
}

std::vector<shrink::param> gptq_params(bool sequential) {
    std::vector<shrink::param> out{
        shrink::param::choice("bits", "4", "8|4|3|2", "bits per weight (3 and 2 stored in the 4-bit container)"),
        shrink::param::choice("scheme", "asymmetric", "symmetric|asymmetric", "as quantizer.rtn's"),
        shrink::param::integer("group_size", 128, 0, 8192, "columns per scale; 0 = one scale per row"),
        shrink::param::flag("act_order", false, "quantize columns by decreasing Hessian diagonal (static groups)"),
        shrink::param::real("damp", "0.01", 0.0001, 1, "damping, a fraction of the Hessian's mean diagonal"),
        shrink::param::integer("block_size", 128, 1, 8192, "columns per block of lazy updates"),
        shrink::param::layers("layers", "quantize only these layers (default: every linear layer)")};
    if (sequential) out.push_back(shrink::param::integer("samples", 0, 0, 100000000, "at most this many calibration samples (windows); 0 = all"));
    return out;
}

// A layer at a time: its weight as read and as updated (float), its codes twice, a
// superblock's errors (at most 512 columns: no more floats than the weight has); H (double)
// and U (float).
uint64_t layer_memory(const shrink::params&, const shrink_model_outline& m) {
    return m.largest_weight * 14 + m.widest_input * m.widest_input * 12;
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-quantizer-gptq", "0.1.0");
    p.add({.name = "quantizer.gptq_sequential",
           .doc = "GPTQ as its paper runs it: the calibration samples go through the model a decoder block at a time, each block "
                  "quantized from Hessians of its inputs through the blocks before it as already quantized; needs no calibrator",
           .params = gptq_params(true),
           .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"), shrink::fact::invalidates("activation_ranges"),
                     shrink::fact::invalidates("hessians")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop,
           .run = run_sequential,
           .resources = SHRINK_RESOURCE_BLOCK_STREAM | SHRINK_RESOURCE_HESSIANS,
           .time_class = SHRINK_TIME_DATA,
           .memory = layer_memory});
    p.add({.name = "quantizer.gptq",
           .doc = "GPTQ: each linear layer's columns quantized in turn, the rounding error moved onto the columns after it through "
                  "the inverse input Hessian (from calibrator.hessian); RTN's encoding",
           .params = gptq_params(false),
           .facts = {shrink::fact::requires_("hessians"), shrink::fact::forbids("weights_quantized"),
                     shrink::fact::provides("weights_quantized"), shrink::fact::invalidates("activation_ranges"),
                     shrink::fact::invalidates("hessians")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_SOLVE,
           .memory = layer_memory});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
