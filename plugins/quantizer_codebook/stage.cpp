// quantizer.nf4: QLoRA's 4-bit NormalFloat (codebook_kernel.hpp), an absmax scale per
// block of 64 weights of a row, the scales double-quantized by the host (int8 codes around
// their mean, an f32 step per 256): 4 + 8/64 + 32/16384 = 4.127 bits a weight.
// quantizer.kmeans: k-means weight sharing, a table of 2^bits centroids per layer or per
// row, k-means++ from the stage's seed.
// Both store the host's table encodings (model.hpp's quant_spec::table), which the runtime
// decodes and exports write as floats.
#include "codebook_kernel.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>

namespace {

std::vector<shrink::layer> layers_to_quantize(shrink::stage_context& ctx, const char* stage) {
    std::vector<shrink::layer> out;
    const std::vector<std::string> only = ctx.params().layers("layers");
    for (const shrink::layer& l : ctx.model().layers()) {
        if (!l.has_matrix() || (!only.empty() && std::find(only.begin(), only.end(), l.name) == only.end())) continue;
        if (ctx.model().info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized; " + stage + " does not re-quantize");
        out.push_back(l);
    }
    return out;
}

void run_nf4(shrink::stage_context& ctx) {
    const uint64_t group = uint64_t(ctx.params().integer("block_size"));
    const bool double_quant = ctx.params().flag("double_quant");
    const std::vector<shrink::layer> layers = layers_to_quantize(ctx, "quantizer.nf4");
    uint64_t weights = 0, bytes = 0;
    int done = 0;
    for (const shrink::layer& l : layers) {
        ctx.progress(("layers: " + l.name).c_str(), uint64_t(done), uint64_t(layers.size()));
        const std::vector<float> w = ctx.model().read(l.weight);
        codebook::nf4_result r = codebook::quantize_nf4(w.data(), l.out_features, l.in_features, group);
        shrink::table_quantized t;
        t.bits = 4;
        t.kind = "nf4";
        t.group_size = group;
        t.double_quant = double_quant;
        t.codes = std::move(r.codes);
        t.scales = std::move(r.scales);
        ctx.model().write(l.weight, t);
        weights += w.size();
        bytes += ctx.model().info(l.weight).stored_bytes;  // the host's count of what it stores
        ++done;
    }
    ctx.progress("layers", uint64_t(done), uint64_t(layers.size()));
    ctx.result("layers_quantized", double(done));
    if (weights) ctx.result("bits_per_weight", 8.0 * double(bytes) / double(weights));
    ctx.log("quantized " + std::to_string(done) + " layers to NF4 in blocks of " + std::to_string(group) +
            (double_quant ? ", scales double-quantized" : ""));
}

void run_kmeans(shrink::stage_context& ctx) {
    codebook::kmeans_options o;
    o.bits = std::stoi(ctx.params().choice("bits"));
    o.per_row = ctx.params().choice("table") == "per_row";
    o.iterations = int(ctx.params().integer("iterations"));
    const std::vector<shrink::layer> layers = layers_to_quantize(ctx, "quantizer.kmeans");
    double first = 0, last = 0;
    uint64_t weights = 0, bytes = 0;
    int done = 0;
    for (const shrink::layer& l : layers) {
        ctx.progress(("layers: " + l.name).c_str(), uint64_t(done), uint64_t(layers.size()));
        const std::vector<float> w = ctx.model().read(l.weight);
        // Each layer's draws: the stage's seed and the layer's place.
        o.seed = ctx.seed() + uint64_t(done) * 0x2545f4914f6cdd1dull;
        codebook::kmeans_result r = codebook::quantize_kmeans(w.data(), l.out_features, l.in_features, o);
        if (!r.sse.empty()) first += r.sse.front(), last += r.sse.back();
        shrink::table_quantized t;
        t.bits = r.container_bits;
        t.kind = "kmeans";
        t.books = o.per_row ? l.out_features : 1;
        t.codes = std::move(r.codes);
        t.table = std::move(r.table);
        ctx.model().write(l.weight, t);
        weights += w.size();
        bytes += ctx.model().info(l.weight).stored_bytes;
        ++done;
    }
    ctx.progress("layers", uint64_t(done), uint64_t(layers.size()));
    ctx.result("layers_quantized", double(done));
    if (weights) ctx.result("bits_per_weight", 8.0 * double(bytes) / double(weights));
    ctx.result("sse_start", first);
    ctx.result("sse", last);
    ctx.log("clustered " + std::to_string(done) + " layers' weights into " + std::to_string(1 << o.bits) + " values " +
            (o.per_row ? "per row" : "per layer"));
}

// Coarse priors the ledger replaces: NF4 sits near int4 in small groups; k-means near RTN
// of the same width per channel.
double expected_drop_nf4(const shrink::params&) { return 0.01; }
double expected_drop_kmeans(const shrink::params& p) {
    const int bits = std::stoi(p.choice("bits"));
    return bits >= 8 ? 0.002 : bits == 4 ? 0.02 : bits == 3 ? 0.06 : 0.25;
}

shrink::param layers_param() { return shrink::param::layers("layers", "quantize only these layers (default: every linear and conv layer)"); }

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-quantizer-codebook", "0.1.0");
    const std::vector<shrink::fact> facts{shrink::fact::forbids("weights_quantized"), shrink::fact::provides("weights_quantized"),
                                          shrink::fact::invalidates("activation_ranges")};
    p.add({.name = "quantizer.nf4",
           .doc = "QLoRA's 4-bit NormalFloat: each block of a row scaled by its absmax and rounded to the nearest of 16 normal "
                  "quantiles; the scales double-quantized to 8 bits (4.127 bits a weight)",
           .params = {shrink::param::integer("block_size", 64, 16, 4096, "weights of a row per absmax scale"),
                      shrink::param::flag("double_quant", true, "store the scales as int8 codes, an f32 step per 256 (QLoRA)"),
                      layers_param()},
           .facts = facts,
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop_nf4,
           .run = run_nf4,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    p.add({.name = "quantizer.kmeans",
           .doc = "k-means weight sharing: each layer's (or row's) weights clustered into 2^bits values from a seeded k-means++ "
                  "start; codes and the table stored",
           .params = {shrink::param::choice("bits", "4", "8|4|3|2", "2^bits values per table (3 and 2 in the 4-bit container)"),
                      shrink::param::choice("table", "per_layer", "per_layer|per_row", "one table per layer, or per output row"),
                      shrink::param::integer("iterations", 20, 1, 1000, "Lloyd iterations at most"),
                      layers_param()},
           .facts = facts,
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = expected_drop_kmeans,
           .run = run_kmeans,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
